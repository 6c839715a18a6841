/*
 * engine/sit.h — the SiT/DiT velocity transformer and FlowTurbo's velocity
 * refiner (the same network with depth 1 and [x, v] as input), run through
 * the backend op table.
 *
 * A forward is split in two so a whole trajectory's conditioning can be
 * computed up front: sit_condition turns (t, label) rows into the adaLN
 * modulation of every block and the final layer with ONE GEMM (all adaLN
 * weights are concatenated at load); sit_forward then runs the token path
 * for one network call, reading its rows of that modulation.
 */
#ifndef FT_SIT_H
#define FT_SIT_H

#include "../kernels/backend.h"
#include "errors.h"
#include "safetensors.h"
#include "weights.h"

#define SIT_FREQ_DIM 256
#define SIT_LN_EPS 1e-6f

typedef struct {
    int is_refiner;
    int input_size, in_channels, out_channels, patch, hidden, depth, heads, head_dim;
    int mlp_hidden, num_classes, learn_sigma, guided_channels;
    /* refiner metadata "refiner_kind": "released" (or absent) = the released
     * FlowTurbo refiner; "guided" = trained on the guided velocity, run once
     * per R step on the guided rows (engine/plan.c) */
    int guided_refiner;
    float mlp_ratio;
    /* derived */
    int tokens;         /* (input_size / patch)^2 */
    int embed_channels; /* patch-embed input channels: in (predictor) or 2 in (refiner) */
    int final_out;      /* patch^2 * out_channels */
    int mod_width;      /* depth * 6 hidden + 2 hidden: one conditioning row */
} sit_config;

typedef struct {
    void *qkv_w, *proj_w, *fc1_w, *fc2_w;
    float *qkv_b, *proj_b, *fc1_b, *fc2_b;
} sit_block_weights;

typedef struct {
    sit_config cfg;
    void *arena; /* the one backend allocation */
    size_t n_params;
    char source[256];
    char *class_names;      /* "class_names" metadata split into NUL-separated names, or NULL */
    const char **class_name; /* [num_classes] pointers into class_names */
    void *patch_w;
    float *patch_b, *pos;
    void *t_w0, *t_w2;
    float *t_b0, *t_b2;
    float *y_table;
    void *ada_w; /* [mod_width, hidden]: blocks' adaLN then the final layer's */
    float *ada_b;
    sit_block_weights *blocks;
    void *final_w;
    float *final_b;
} sit_model;

/* Buffers of one network call over N rows (see sit_forward_sizes). */
typedef struct {
    float *tokens;                    /* f32 [N, T, D] residual stream */
    void *h, *qkv, *attn, *a, *fc1, *fo; /* act */
} sit_scratch;

/* Buffers of sit_condition over R rows. */
typedef struct {
    float *freq, *temb;    /* f32 [R, 256], [R, D] */
    void *freq_act, *t_hidden, *c_act; /* act [R, 256], [R, D], [R, D] */
} sit_cond_scratch;

ft_status sit_config_read(const st_file *f, ft_role role, sit_config *cfg, ft_err *err);
ft_status sit_load(ft_backend *be, const st_file *f, ft_role role, sit_model *m, ft_load_progress progress,
                   void *user, ft_err *err);
void sit_free(ft_backend *be, sit_model *m);

/* Element counts of each sit_scratch / sit_cond_scratch buffer for N / R rows. */
void sit_forward_sizes(const sit_config *c, int N, size_t *tokens, size_t *h, size_t *qkv, size_t *fc1,
                       size_t *fo);
void sit_cond_sizes(const sit_config *c, int R, size_t *freq, size_t *hidden);

/* One backend allocation (*block, free with be->free) holding the scratch of
 * a forward over N rows and of a conditioning over R rows — for tools and
 * tests; plans carve these buffers out of their own allocation. */
ft_status sit_scratch_alloc(ft_backend *be, const sit_config *c, int N, int R, sit_scratch *s, sit_cond_scratch *cs,
                            void **block);

/* mod[R, mod_width] (f32) from t[R] and labels[R] (device). */
void sit_condition(ft_backend *be, const sit_model *m, const sit_cond_scratch *s, const float *t,
                   const int32_t *labels, int R, float *mod);

/* The same with the label embeddings read from y_table (rows of hidden floats) instead of the model's:
 * plans pass per-image rows (plain or blended class embeddings, plan.c). */
void sit_condition_table(ft_backend *be, const sit_model *m, const sit_cond_scratch *s, const float *t,
                         const float *y_table, const int32_t *labels, int R, float *mod);

/* out[N, in_channels, S, S] (f32) = the velocity (predictor) or velocity
 * offset (refiner). Row n reads x[n % x_batch]; a refiner also reads v[n].
 * mod points at the N conditioning rows of this call. */
void sit_forward(ft_backend *be, const sit_model *m, const sit_scratch *s, const float *x, int x_batch,
                 const float *v, const float *mod, int N, float *out);

#endif
