/* engine/plan.c — buffer layout, per-call inputs and the trajectory of a
 * sample configuration (see plan.h). The trajectory reproduces the released
 * FlowTurbo code (models_assemble.py), quirks included:
 *  - every network call sees x[:B] twice (cond and uncond rows), so only the
 *    conditional half of the state is kept (x is [B, ...]);
 *  - velocities are kept for all 2B rows: guidance touches only channels
 *    < guided_channels, the rest differ per half, and the refiner's v input
 *    is the full 2B carried velocity;
 *  - Heun carries the velocity at the Euler point x~; a pseudo-corrector step
 *    reuses it instead of a first call; a refiner step computes
 *    d = w + R(x, w, t_i), e = d + R(x~, w, t_{i+1}) and carries d.
 * Not in the released code (issue 12): a guided refiner (refiner_kind
 * "guided", trained on the guided teacher velocity) runs once per R step on
 * the B conditional rows, whose carried velocity is the guided one:
 * d = w + R(x, w, t_i) without a guidance combine, x += h d, carry d. And a
 * shifted time grid ("/s<F>") gives every step its own h. */
#include "plan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finite.h"

#define PLAN_ALIGN 256

struct ft_plan {
    ft_plan_key key;
    int nb;       /* rows per network call */
    int C, S;     /* state channels and side */
    size_t state; /* floats per image */
    int image_size, image_channels;
    void *arena;
    size_t bytes;
    float *x, *xt, *vel[3], *raw;
    float *t_pred, *t_ref, *mod_pred, *mod_ref;
    int32_t *labels;      /* rows' indices into the label tables: image b -> b, unconditional rows -> batch */
    float *ytab_pred, *ytab_ref; /* [batch + 1, hidden] per-call label embeddings (plain or blended) + null */
    float *mix_tmp;       /* one embedding row: a weighted term of a blend */
    float *cfg_scale;
    uint64_t *seeds;
    sit_scratch fwd;
    sit_cond_scratch cond;
    void *vae_scratch;
    float *img;
    uint8_t *rgb;
    int *pred_block, *ref_block; /* grid point -> conditioning row block, or -1 */
    float *h;                    /* step size of each update */
    int n_pred_points, n_ref_points;
    void *graph;
    int warmed_up;   /* one eager run completed: every kernel and GEMM algorithm has run once */
    int bad_step, bad_image; /* the first NaN / Inf seen by this run (host-memory backends), step 0: none */
    ft_plan_env env; /* of the current run: graph host nodes read it */
    struct plan_step {
        ft_plan *plan;
        int k, n;
    } *steps;
};

/* Offsets are computed with base 0, then again with the real base. */
static void *carve(uintptr_t base, size_t *off, size_t bytes) {
    void *p = (void *)(base + *off);
    *off += (bytes + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    return p;
}

static size_t layout(ft_plan *p, const ft_plan_env *env, uintptr_t base) {
    ft_backend *be = env->be;
    size_t off = 0, F = sizeof(float), A = be->act_size;
    size_t vel = (size_t)p->nb * p->state;
    p->x = carve(base, &off, p->key.batch * p->state * F);
    p->xt = carve(base, &off, p->key.batch * p->state * F);
    for (int i = 0; i < 3; i++) p->vel[i] = carve(base, &off, vel * F);
    p->raw = carve(base, &off, vel * F);
    /* token-path scratch, shared by predictor and refiner (max of both) */
    size_t tok = 0, h = 0, qkv = 0, fc1 = 0, fo = 0, freq = 0, hid = 0;
    int max_points = p->n_pred_points > p->n_ref_points ? p->n_pred_points : p->n_ref_points;
    const sit_model *models[2] = {env->pred, env->ref};
    for (int m = 0; m < 2; m++) {
        if (!models[m]) continue;
        size_t a, b, c, d, e, f2, g;
        sit_forward_sizes(&models[m]->cfg, p->nb, &a, &b, &c, &d, &e);
        sit_cond_sizes(&models[m]->cfg, max_points * p->nb, &f2, &g);
        if (a > tok) tok = a;
        if (b > h) h = b;
        if (c > qkv) qkv = c;
        if (d > fc1) fc1 = d;
        if (e > fo) fo = e;
        if (f2 > freq) freq = f2;
        if (g > hid) hid = g;
    }
    p->fwd.tokens = carve(base, &off, tok * F);
    p->fwd.h = carve(base, &off, h * A);
    p->fwd.qkv = carve(base, &off, qkv * A);
    p->fwd.attn = carve(base, &off, h * A);
    p->fwd.a = carve(base, &off, h * A);
    p->fwd.fc1 = carve(base, &off, fc1 * A);
    p->fwd.fo = carve(base, &off, fo * A);
    p->cond.freq = carve(base, &off, freq * F);
    p->cond.freq_act = carve(base, &off, freq * A);
    p->cond.t_hidden = carve(base, &off, hid * A);
    p->cond.temb = carve(base, &off, hid * F);
    p->cond.c_act = carve(base, &off, hid * A);
    size_t pred_rows = (size_t)p->n_pred_points * p->nb, ref_rows = (size_t)p->n_ref_points * p->nb;
    p->t_pred = carve(base, &off, pred_rows * F);
    p->mod_pred = carve(base, &off, pred_rows * env->pred->cfg.mod_width * F);
    if (env->ref) {
        p->t_ref = carve(base, &off, ref_rows * F);
        p->mod_ref = carve(base, &off, ref_rows * env->ref->cfg.mod_width * F);
    }
    p->labels = carve(base, &off, (size_t)max_points * p->nb * sizeof(int32_t));
    p->ytab_pred = carve(base, &off, (p->key.batch + 1) * (size_t)env->pred->cfg.hidden * F);
    if (env->ref) p->ytab_ref = carve(base, &off, (p->key.batch + 1) * (size_t)env->ref->cfg.hidden * F);
    int hmax = env->ref && env->ref->cfg.hidden > env->pred->cfg.hidden ? env->ref->cfg.hidden : env->pred->cfg.hidden;
    p->mix_tmp = carve(base, &off, (size_t)hmax * F);
    p->cfg_scale = carve(base, &off, F);
    p->seeds = carve(base, &off, p->key.batch * sizeof(uint64_t));
    if (p->key.decode) {
        if (env->vae) {
            p->vae_scratch = carve(base, &off, vae_scratch_bytes(env->be, env->vae, p->key.batch, p->S));
            p->img = carve(base, &off, (size_t)p->key.batch * p->image_channels * p->image_size * p->image_size * F);
        }
        p->rgb = carve(base, &off, (size_t)p->key.batch * p->image_size * p->image_size * 3);
    }
    return off;
}

/* Grid-point -> row-block maps and the constant t rows. */
static int index_points(const unsigned char *used, int n, int *block) {
    int count = 0;
    for (int i = 0; i < n; i++) block[i] = used[i] ? count++ : -1;
    return count;
}

void plan_free(ft_backend *be, ft_plan *p) {
    if (!p) return;
    if (p->graph && be->graph_free) be->graph_free(be, p->graph);
    if (p->arena) be->free(be, p->arena);
    free(p->pred_block);
    free(p->ref_block);
    free(p->h);
    free(p->steps);
    free(p);
}

static ft_status upload_time_rows(ft_plan *p, ft_backend *be, const float *grid, const int *block, int n_points,
                                  float *dst) {
    int points = p->key.sampler.steps + 1;
    float *rows = malloc((size_t)n_points * p->nb * sizeof(float) + 1);
    if (!rows) return FT_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < points; i++)
        if (block[i] >= 0)
            for (int r = 0; r < p->nb; r++) rows[(size_t)block[i] * p->nb + r] = grid[i];
    ft_status st = be->upload(be, dst, rows, (size_t)n_points * p->nb * sizeof(float));
    free(rows);
    return st;
}

/* Row r of every conditioning block reads label-table row b = r % nb for b < batch, the null row otherwise. */
static ft_status upload_label_rows(ft_plan *p, ft_backend *be) {
    int max_points = p->n_pred_points > p->n_ref_points ? p->n_pred_points : p->n_ref_points;
    size_t n_rows = (size_t)max_points * p->nb;
    int32_t *rows = malloc(n_rows * sizeof *rows + 1);
    if (!rows) return FT_ERR_OUT_OF_MEMORY;
    for (size_t r = 0; r < n_rows; r++) {
        int in_block = (int)(r % (size_t)p->nb);
        rows[r] = in_block < p->key.batch ? in_block : p->key.batch;
    }
    ft_status st = be->upload(be, p->labels, rows, n_rows * sizeof *rows);
    free(rows);
    return st;
}

ft_status plan_create(const ft_plan_env *env, const ft_plan_key *key, ft_plan **out, ft_err *err) {
    ft_backend *be = env->be;
    *out = NULL;
    ft_plan *p = calloc(1, sizeof *p);
    int points = key->sampler.steps + 1;
    if (p) {
        p->pred_block = calloc((size_t)points, sizeof(int));
        p->ref_block = calloc((size_t)points, sizeof(int));
        p->h = calloc((size_t)key->sampler.steps, sizeof(float));
        p->steps = calloc((size_t)key->sampler.steps, sizeof *p->steps);
    }
    unsigned char *pu = malloc((size_t)points), *ru = malloc((size_t)points);
    float *grid = malloc((size_t)points * sizeof(float));
    ft_status st = FT_OK;
    if (!p || !p->pred_block || !p->ref_block || !p->h || !p->steps || !pu || !ru || !grid) {
        st = ft_fail(err, FT_ERR_OUT_OF_MEMORY, "out of host memory creating a sampling plan");
        goto done;
    }
    p->key = *key;
    p->nb = key->guided ? 2 * key->batch : key->batch;
    p->C = env->pred->cfg.in_channels;
    p->S = env->pred->cfg.input_size;
    p->state = (size_t)p->C * p->S * p->S;
    p->image_size = env->vae ? vae_image_size(env->vae, p->S) : p->S;
    p->image_channels = env->vae ? vae_get_config(env->vae)->out_channels : p->C;
    sampler_used_points(&key->sampler, pu, ru);
    sampler_grid(&key->sampler, grid, p->h);
    p->n_pred_points = index_points(pu, points, p->pred_block);
    p->n_ref_points = index_points(ru, points, p->ref_block);
    size_t bytes = layout(p, env, 0);
    st = be->alloc(be, bytes, &p->arena);
    if (st != FT_OK) {
        st = ft_fail(err, st, "cannot allocate %.1f MiB for a batch-%d %s plan on the %s backend: %s",
                     bytes / 1048576.0, key->batch, key->sampler.name, be->name, be->error);
        goto done;
    }
    p->bytes = bytes;
    layout(p, env, (uintptr_t)p->arena);
    st = upload_time_rows(p, be, grid, p->pred_block, p->n_pred_points, p->t_pred);
    if (st == FT_OK && env->ref) st = upload_time_rows(p, be, grid, p->ref_block, p->n_ref_points, p->t_ref);
    if (st == FT_OK) st = upload_label_rows(p, be);
    if (st != FT_OK) st = ft_fail(err, st, "cannot upload the time grid and label rows: %s", be->error);
done:
    free(pu);
    free(ru);
    free(grid);
    if (st != FT_OK) plan_free(be, p);
    else *out = p;
    return st;
}

const ft_plan_key *plan_key(const ft_plan *p) { return &p->key; }
size_t plan_bytes(const ft_plan *p) { return p->bytes; }
const float *plan_latents(const ft_plan *p) { return p->x; }
const uint8_t *plan_rgb(const ft_plan *p) { return p->rgb; }
const float *plan_image(const ft_plan *p) { return p->img ? p->img : p->x; }
int plan_image_channels(const ft_plan *p) { return p->image_channels; }
int plan_image_size(const ft_plan *p) { return p->image_size; }

/* The label table of one model: row b = E[labels[b]] or sum_c w[b][c] E[c] (terms with w != 0, c ascending),
 * row batch = the null class embedding. Copies are scale by 1 (exact). */
static void fill_label_table(ft_plan *p, ft_backend *be, const sit_model *m, float *tab, const int *labels,
                             const float *class_weights) {
    int D = m->cfg.hidden, K = m->cfg.num_classes;
    for (int b = 0; b < p->key.batch; b++) {
        float *row = tab + (size_t)b * D;
        if (!class_weights) {
            be->scale(be, row, m->y_table + (size_t)labels[b] * D, 1.0f, (size_t)D);
            continue;
        }
        const float *w = class_weights + (size_t)b * K;
        int first = 1;
        for (int c = 0; c < K; c++) {
            if (w[c] == 0.0f) continue;
            be->scale(be, first ? row : p->mix_tmp, m->y_table + (size_t)c * D, w[c], (size_t)D);
            if (!first) be->add(be, row, row, p->mix_tmp, (size_t)D);
            first = 0;
        }
        if (first) be->scale(be, row, m->y_table, 0.0f, (size_t)D); /* all weights 0: the zero embedding */
    }
    be->scale(be, tab + (size_t)p->key.batch * D, m->y_table + (size_t)K * D, 1.0f, (size_t)D);
}

ft_status plan_set_inputs(ft_plan *p, const ft_plan_env *env, const int *labels, const float *class_weights,
                          float cfg_scale, const uint64_t *seeds, const float *noise, ft_err *err) {
    ft_backend *be = env->be;
    fill_label_table(p, be, env->pred, p->ytab_pred, labels, class_weights);
    if (env->ref) fill_label_table(p, be, env->ref, p->ytab_ref, labels, class_weights);
    ft_status st = be->upload(be, p->cfg_scale, &cfg_scale, sizeof cfg_scale);
    if (st == FT_OK && noise) st = be->upload(be, p->x, noise, p->key.batch * p->state * sizeof(float));
    if (st == FT_OK && !noise) {
        st = be->upload(be, p->seeds, seeds, p->key.batch * sizeof(uint64_t));
        if (st == FT_OK) be->randn(be, p->x, p->state, p->key.batch, p->seeds);
    }
    if (st != FT_OK) return ft_fail(err, st, "cannot write the plan inputs: %s", be->error);
    return FT_OK;
}

/* ---- the trajectory ---- */

static const float *pred_mod(const ft_plan *p, const ft_plan_env *env, int point) {
    return p->mod_pred + (size_t)p->pred_block[point] * p->nb * env->pred->cfg.mod_width;
}

static const float *ref_mod(const ft_plan *p, const ft_plan_env *env, int point) {
    return p->mod_ref + (size_t)p->ref_block[point] * p->nb * env->ref->cfg.mod_width;
}

/* Profiler ranges (NVTX on CUDA); no-ops on backends without the hooks. */
static void range_push(ft_backend *be, const char *name) {
    if (be->range_push) be->range_push(be, name);
}

static void range_pop(ft_backend *be) {
    if (be->range_pop) be->range_pop(be);
}

/* The ODE update that follows a network call: x_out = x_in + h v (Euler,
 * d == NULL) or x_in + h/2 (d + v) (Heun), over the conditional rows. */
typedef struct {
    float *x_out;
    const float *x_in, *d;
    float h;
} plan_update;

/* The tail of a network call over 2B rows (guided) or B rows: v =
 * guide(raw) (+ base), then the update u (may be NULL). One fused op where
 * the backend has velocity_tail, else the composed ops (the CPU reference). */
static void call_tail(const ft_plan *p, const ft_plan_env *env, float *v, float *raw, const float *base,
                      const plan_update *u, int guided) {
    ft_backend *be = env->be;
    size_t n = (size_t)p->key.batch * p->state;
    if (be->velocity_tail) {
        be->velocity_tail(be, v, raw, base, p->key.batch, guided, p->C, p->S * p->S, p->cfg_scale,
                          env->guided_channels, u ? u->x_out : NULL, u ? u->x_in : NULL, u ? u->d : NULL,
                          u ? u->h : 0.0f);
        return;
    }
    if (guided)
        be->cfg_combine(be, base ? raw : v, raw, p->key.batch, p->C, p->S * p->S, p->cfg_scale,
                        env->guided_channels);
    if (base) be->add(be, v, base, raw, (size_t)(guided ? 2 : 1) * p->key.batch * p->state);
    if (!u) return;
    if (u->d) be->heun_update(be, u->x_out, u->x_in, u->d, v, u->h, n);
    else be->euler_update(be, u->x_out, u->x_in, v, u->h, n);
}

/* out = V(x_in, t_point): the (guided) predictor velocity for all rows; then u. */
static void velocity(const ft_plan *p, const ft_plan_env *env, const float *x_in, int point, float *out,
                     const plan_update *u) {
    float *dst = p->key.guided ? p->raw : out;
    range_push(env->be, "predictor");
    sit_forward(env->be, env->pred, &p->fwd, x_in, p->key.batch, NULL, pred_mod(p, env, point), p->nb, dst);
    call_tail(p, env, out, dst, NULL, u, p->key.guided);
    range_pop(env->be);
}

/* out = base + Δ(x_in, w, t_point): a refined velocity; then u. The
 * released refiner runs on all rows and is guided like the predictor; a
 * guided refiner runs on the B conditional rows only (the first B rows of its
 * conditioning block carry the labels) and its offset is not combined. */
static void refine(const ft_plan *p, const ft_plan_env *env, const float *x_in, const float *w, const float *base,
                   int point, float *out, const plan_update *u) {
    int once = p->key.sampler.refine_once;
    range_push(env->be, "refiner");
    sit_forward(env->be, env->ref, &p->fwd, x_in, p->key.batch, w, ref_mod(p, env, point),
                once ? p->key.batch : p->nb, p->raw);
    call_tail(p, env, out, p->raw, base, u, p->key.guided && !once);
    range_pop(env->be);
}

static void decode_done(void *user) {
    ft_plan *p = user;
    if (p->env.on_decoded) p->env.on_decoded(p->env.user, p->key.batch);
}

static void step_done(void *user) {
    struct plan_step *s = user;
    if (s->plan->env.on_step) s->plan->env.on_step(s->plan->env.user, s->k, s->n);
}

/* On host-memory backends the state is checked for NaN / Inf after every step (one pass over B*C*S*S floats,
 * small next to a network call), and the decoder's float output before it becomes bytes: an overflow stops the
 * run and is reported with its step instead of turning into black images. 1 when x went bad. */
static int went_bad(ft_plan *p, const ft_plan_env *env, const float *x, size_t per_image, int step) {
    if (!env->be->host_memory) return 0;
    size_t n = (size_t)p->key.batch * per_image, i = finite_scan_f32(x, n);
    if (i == n) return 0;
    p->bad_step = step;
    p->bad_image = (int)(i / per_image);
    return 1;
}

void plan_nonfinite(const ft_plan *p, int *step, int *image) {
    *step = p->bad_step;
    *image = p->bad_image;
}

/* A velocity buffer that is neither a nor b. */
static float *spare(const ft_plan *p, const float *a, const float *b) {
    for (int i = 0; i < 3; i++)
        if (p->vel[i] != a && p->vel[i] != b) return p->vel[i];
    return NULL;
}

static void emit_trajectory(ft_plan *p, const ft_plan_env *env) {
    ft_backend *be = env->be;
    const ft_sampler_cfg *sc = &p->key.sampler;
    size_t n = (size_t)p->key.batch * p->state; /* x update: conditional rows only */
    range_push(be, "condition");
    sit_condition_table(be, env->pred, &p->cond, p->t_pred, p->ytab_pred, p->labels, p->n_pred_points * p->nb,
                        p->mod_pred);
    if (env->ref && p->n_ref_points)
        sit_condition_table(be, env->ref, &p->cond, p->t_ref, p->ytab_ref, p->labels, p->n_ref_points * p->nb,
                            p->mod_ref);
    range_pop(be);
    float *carry = NULL;
    int i = 0;
    p->bad_step = 0;
    for (int k = 0; k < sc->steps; k++, i++) {
        if (env->cancel && *env->cancel) return;
        char block[32];
        char kind = sc->euler ? 'E' : k < sc->n_h ? 'H' : k < sc->n_h + sc->n_p ? 'P' : 'R';
        snprintf(block, sizeof block, "%c block %d", kind, k + 1);
        range_push(be, block);
        float h = p->h[k]; /* uniform grid: 1/N = t[1] - t[0] of the float32 grid, as released */
        if (sc->euler) {
            float *d = p->vel[0];
            plan_update u = {p->x, p->x, NULL, h};
            velocity(p, env, p->x, i, d, &u);
        } else if (k < sc->n_h + sc->n_p) {
            int pseudo = k >= sc->n_h;
            float *d = pseudo && carry ? carry : spare(p, NULL, NULL);
            plan_update ue = {p->xt, p->x, NULL, h};
            if (d != carry) velocity(p, env, p->x, i, d, &ue);
            else be->euler_update(be, p->xt, p->x, d, h, n);
            float *e = spare(p, d, NULL);
            plan_update uh = {p->x, p->x, d, h};
            velocity(p, env, p->xt, i + 1, e, &uh);
            carry = e;
        } else if (sc->refine_once) {
            float *w = carry;
            float *d = spare(p, w, NULL);
            plan_update ue = {p->x, p->x, NULL, h};
            refine(p, env, p->x, w, w, i, d, &ue);
            carry = d;
        } else {
            float *w = carry;
            float *d = spare(p, w, NULL);
            plan_update ue = {p->xt, p->x, NULL, h};
            refine(p, env, p->x, w, w, i, d, &ue);
            float *e = spare(p, w, d);
            plan_update uh = {p->x, p->x, d, h};
            refine(p, env, p->xt, w, d, i + 1, e, &uh);
            carry = d;
        }
        range_pop(be);
        if (went_bad(p, env, p->x, p->state, k + 1)) return;
        p->steps[k].plan = p;
        p->steps[k].k = k + 1;
        p->steps[k].n = sc->steps;
        be->host_fn(be, step_done, &p->steps[k]);
    }
    if (!p->key.decode) return;
    range_push(be, "decode");
    if (env->vae) {
        vae_decode(be, env->vae, p->vae_scratch, p->x, p->key.batch, p->S, p->img);
        size_t per_image = (size_t)p->image_channels * p->image_size * p->image_size;
        if (went_bad(p, env, p->img, per_image, sc->steps + 1)) return;
        be->to_rgb8(be, p->rgb, p->img, p->key.batch, p->image_channels, p->image_size);
    } else {
        be->to_rgb8(be, p->rgb, p->x, p->key.batch, p->C, p->S);
    }
    be->host_fn(be, decode_done, p);
    range_pop(be);
}

ft_status plan_enqueue(ft_plan *p, const ft_plan_env *env_in, int use_graphs, ft_err *err) {
    p->env = *env_in;
    const ft_plan_env *env = &p->env;
    ft_backend *be = env->be;
    ft_status st;
    int graphs = use_graphs && be->begin_capture && be->replay;
    /* The first run of a plan is eager: a kernel's first launch (lazy module
     * loading) and a cuBLASLt algorithm's first use must not happen inside a
     * graph capture. The graph is captured by the next run, which replays it. */
    if (graphs && !p->warmed_up) {
        emit_trajectory(p, env);
        if (!(env->cancel && *env->cancel)) p->warmed_up = 1; /* a truncated run launched only some kernels */
        return FT_OK;
    }
    if (graphs && !p->graph) {
        if ((st = be->begin_capture(be)) == FT_OK) {
            emit_trajectory(p, env);
            st = be->end_capture(be, &p->graph);
            if (st == FT_OK && env->cancel && *env->cancel) { /* a truncated trajectory must not be kept */
                be->graph_free(be, p->graph);
                p->graph = NULL;
                return ft_fail(err, FT_ERR_CANCELLED, "cancelled by the progress callback");
            }
        }
        if (st != FT_OK) return ft_fail(err, st, "capturing the trajectory failed: %s", be->error);
    }
    if (graphs) {
        st = be->replay(be, p->graph);
        if (st != FT_OK) return ft_fail(err, st, "replaying the trajectory failed: %s", be->error);
    } else {
        emit_trajectory(p, env);
    }
    return FT_OK;
}

ft_status plan_run(ft_plan *p, const ft_plan_env *env, int use_graphs, ft_err *err) {
    ft_backend *be = env->be;
    ft_status st = plan_enqueue(p, env, use_graphs, err);
    if (st != FT_OK) return st;
    st = be->sync(be);
    if (st != FT_OK) return ft_fail(err, st, "sampling failed on the %s backend: %s", be->name, be->error);
    if (p->bad_step) return ft_fail(err, FT_ERR_NUMERIC, "NaN or Inf after step %d", p->bad_step);
    if (env->cancel && *env->cancel) return ft_fail(err, FT_ERR_CANCELLED, "cancelled by the progress callback");
    return FT_OK;
}
