/*
 * engine/plan.h — one sample configuration, compiled: every buffer a
 * trajectory needs in ONE backend allocation, the constant time grid and
 * per-point conditioning layout uploaded once, and (on backends with graphs)
 * the whole trajectory captured the first time and replayed afterwards.
 *
 * Per-call inputs live in fixed device buffers written before each run:
 * the initial noise (x), labels, seeds and the guidance scale. Nothing is
 * allocated while sampling.
 */
#ifndef FT_PLAN_H
#define FT_PLAN_H

#include "../kernels/backend.h"
#include "sampler.h"
#include "sit.h"
#include "vae.h"

typedef struct {
    int batch;       /* images per run (B) */
    int guided;      /* classifier-free guidance (2B rows per network call) */
    int decode;      /* run the VAE / pixel mapping and produce RGB8 */
    ft_sampler_cfg sampler;
} ft_plan_key;

typedef struct ft_plan ft_plan;

typedef struct {
    ft_backend *be;
    const sit_model *pred;
    const sit_model *ref; /* NULL unless the sampler has R blocks */
    const vae_model *vae; /* NULL: pixel space (or no decode) */
    int guided_channels;
    /* called in stream order after each sampler step (k of n) */
    void (*on_step)(void *user, int k, int n);
    /* called in stream order once the batch's n images are decoded */
    void (*on_decoded)(void *user, int n);
    void *user;
    const volatile int *cancel; /* eager runs stop emitting steps once set */
} ft_plan_env;

ft_status plan_create(const ft_plan_env *env, const ft_plan_key *key, ft_plan **out, ft_err *err);
void plan_free(ft_backend *be, ft_plan *p);
const ft_plan_key *plan_key(const ft_plan *p);
size_t plan_bytes(const ft_plan *p);

/* Fills the per-call inputs: the label embeddings of the B images (class ids
 * labels[B], or soft labels class_weights[B, num_classes] when not NULL; the
 * unconditional half uses the null class), guidance scale, and either seeds
 * (noise drawn on the device, image b from seeds[b]) or caller noise
 * [B, C, S, S]. Enqueued in order before the next run. */
ft_status plan_set_inputs(ft_plan *p, const ft_plan_env *env, const int *labels, const float *class_weights,
                          float cfg_scale, const uint64_t *seeds, const float *noise, ft_err *err);

/* Enqueues the trajectory (+ decode) and does not wait for it. When the
 * backend has graphs and use_graphs is set, the plan's first run is eager
 * (every kernel runs once outside a capture), the second captures the
 * trajectory into a graph, and that run and every later one replay it. */
ft_status plan_enqueue(ft_plan *p, const ft_plan_env *env, int use_graphs, ft_err *err);
/* plan_enqueue, then waits for the results (and reports a cancel). */
ft_status plan_run(ft_plan *p, const ft_plan_env *env, int use_graphs, ft_err *err);

/* After plan_run failed with FT_ERR_NUMERIC (host-memory backends check every step): the step (1-based; steps + 1:
 * the decoder's output) and the first image of the batch holding NaN or Inf. */
void plan_nonfinite(const ft_plan *p, int *step, int *image);

/* Device pointers of the results: final latents [B, C, S, S] and RGB8
 * [B, S', S', 3] (NULL when the plan does not decode). */
const float *plan_latents(const ft_plan *p);
const uint8_t *plan_rgb(const ft_plan *p);
int plan_image_size(const ft_plan *p);
/* The decoded image before the uint8 mapping: VAE output [B, out_channels, S', S'] or the pixel-space state. */
const float *plan_image(const ft_plan *p);
int plan_image_channels(const ft_plan *p);

#endif
