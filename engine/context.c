/* engine/context.c — the public API (flowturbo.h): context, loading,
 * generation with a plan cache, decoding. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/common/philox.h"
#include "errors.h"
#include "flowturbo.h"
#include "plan.h"
#include "safetensors.h"
#include "sampler.h"
#include "sit.h"
#include "vae.h"

#define PLAN_CACHE 4

struct ft_context {
    ft_context_params params;
    ft_backend *be;
    char backend_error[512];
    ft_err err;
    sit_model pred, ref;
    int has_pred, has_ref;
    vae_model *vae;
    ft_plan *plans[PLAN_CACHE];
    uint64_t plan_used[PLAN_CACHE];
    void *decode_buf; /* ft_decode's buffers, kept across calls (grown when a call needs more) */
    size_t decode_bytes;
    uint64_t tick;
    volatile int cancel;
    int batch_done, batch_total; /* images finished / requested in ft_generate */
};

static void ft_log(ft_context *ctx, ft_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ft_log(ft_context *ctx, ft_log_level level, const char *fmt, ...) {
    if (!ctx->params.log_cb) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->params.log_cb(level, msg, ctx->params.log_user);
}

/* Records the message of a failure in the context (ft_last_error). */
static ft_status fail(ft_context *ctx, ft_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ft_status fail(ft_context *ctx, ft_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err.msg, sizeof ctx->err.msg, fmt, ap);
    va_end(ap);
    return st;
}

/* A failure whose message is already in ctx->err. */
static ft_status failed(ft_context *ctx, ft_status st) {
    ft_log(ctx, FT_LOG_ERROR, "%s", ctx->err.msg);
    return st;
}

static int progress(ft_context *ctx, ft_phase phase, int step, int total) {
    if (!ctx->params.progress_cb) return 0;
    if (ctx->params.progress_cb(phase, step, total, ctx->params.progress_user)) ctx->cancel = 1;
    return ctx->cancel;
}

void ft_context_params_init(ft_context_params *p) {
    memset(p, 0, sizeof *p);
    p->backend = FT_BACKEND_AUTO;
    p->device = 0;
    p->n_threads = 0;
    p->compute_dtype = FT_DTYPE_BF16;
    p->use_graphs = 1;
}

void ft_generate_params_init(ft_generate_params *p) {
    memset(p, 0, sizeof *p);
    p->num_images = 1;
    p->seed = 42;
    p->sampler = "H1P5R3";
    p->cfg_scale = 4.0f;
    p->batch_size = 8;
}

ft_context *ft_context_new(const ft_context_params *params) {
    ft_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    if (params) ctx->params = *params;
    else ft_context_params_init(&ctx->params);
    ctx->be = ft_backend_create(ctx->params.backend, ctx->params.device, ctx->params.n_threads,
                                ctx->params.compute_dtype, ctx->backend_error, sizeof ctx->backend_error);
    if (!ctx->be) {
        fail(ctx, FT_ERR_UNSUPPORTED, "cannot start the compute backend: %s", ctx->backend_error);
        ft_log(ctx, FT_LOG_ERROR, "%s", ctx->err.msg);
    } else {
        ft_log(ctx, FT_LOG_INFO, "backend: %s", ctx->be->name);
    }
    return ctx;
}

/* Frees every per-configuration buffer (plans, the decode buffers): on model changes and to retry after OOM. */
static void drop_activation_buffers(ft_context *ctx) {
    for (int i = 0; i < PLAN_CACHE; i++) {
        plan_free(ctx->be, ctx->plans[i]);
        ctx->plans[i] = NULL;
    }
    if (ctx->decode_buf) ctx->be->free(ctx->be, ctx->decode_buf);
    ctx->decode_buf = NULL;
    ctx->decode_bytes = 0;
}

void ft_context_free(ft_context *ctx) {
    if (!ctx) return;
    if (ctx->be) {
        drop_activation_buffers(ctx);
        if (ctx->has_pred) sit_free(ctx->be, &ctx->pred);
        if (ctx->has_ref) sit_free(ctx->be, &ctx->ref);
        if (ctx->vae) vae_free(ctx->be, ctx->vae);
        ctx->be->destroy(ctx->be);
    }
    free(ctx);
}

const char *ft_last_error(const ft_context *ctx) {
    if (!ctx) return "no context";
    return ctx->err.msg;
}

const char *ft_backend_name(const ft_context *ctx) { return ctx && ctx->be ? ctx->be->name : "none"; }

static ft_status need_backend(ft_context *ctx) {
    if (ctx->be) return FT_OK;
    return fail(ctx, FT_ERR_UNSUPPORTED, "no compute backend: %s", ctx->backend_error);
}

static void load_progress(int done, int total, void *user) { progress(user, FT_PHASE_LOADING, done, total); }

/* Binds an opened file to a role, replacing the previous model on success. */
static ft_status load_file(ft_context *ctx, ft_role role, st_file *f) {
    ft_status st;
    ctx->cancel = 0;
    if (role == FT_ROLE_VAE) {
        vae_model *vae = NULL;
        st = vae_load(ctx->be, f, &vae, load_progress, ctx, &ctx->err);
        if (st == FT_OK) {
            drop_activation_buffers(ctx);
            if (ctx->vae) vae_free(ctx->be, ctx->vae);
            ctx->vae = vae;
            ft_log(ctx, FT_LOG_INFO, "loaded VAE %s (%zu params)", f->path, vae_n_params(vae));
        }
        return st;
    }
    sit_model m;
    st = sit_load(ctx->be, f, role, &m, load_progress, ctx, &ctx->err);
    if (st == FT_OK) {
        drop_activation_buffers(ctx);
        sit_model *slot = role == FT_ROLE_PREDICTOR ? &ctx->pred : &ctx->ref;
        int *has = role == FT_ROLE_PREDICTOR ? &ctx->has_pred : &ctx->has_ref;
        if (*has) sit_free(ctx->be, slot);
        *slot = m;
        *has = 1;
        ft_log(ctx, FT_LOG_INFO, "loaded %s %s: %d blocks, hidden %d, %d heads, patch %d, %dx%dx%d, %zu params",
               role == FT_ROLE_PREDICTOR ? "predictor" : "refiner", f->path, m.cfg.depth, m.cfg.hidden, m.cfg.heads,
               m.cfg.patch, m.cfg.in_channels, m.cfg.input_size, m.cfg.input_size, m.n_params);
    }
    return st;
}

static ft_status check_load_args(ft_context *ctx, ft_role role, const void *source) {
    if (!source) return fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_load: path/data is NULL");
    if (role != FT_ROLE_PREDICTOR && role != FT_ROLE_REFINER && role != FT_ROLE_VAE)
        return fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_load: unknown role %d", (int)role);
    return need_backend(ctx);
}

ft_status ft_load(ft_context *ctx, ft_role role, const char *path) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ctx->err.msg[0] = 0;
    ft_status st = check_load_args(ctx, role, path);
    if (st != FT_OK) return failed(ctx, st);
    st_file f;
    st = st_open(&f, path, &ctx->err);
    if (st != FT_OK) return failed(ctx, st);
    st = load_file(ctx, role, &f);
    st_close(&f);
    return st == FT_OK ? FT_OK : failed(ctx, st);
}

ft_status ft_load_memory(ft_context *ctx, ft_role role, const void *data, size_t size, const char *name) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ctx->err.msg[0] = 0;
    ft_status st = check_load_args(ctx, role, data);
    if (st != FT_OK) return failed(ctx, st);
    st_file f;
    st = st_open_memory(&f, data, size, name ? name : "(memory)", &ctx->err);
    if (st != FT_OK) return failed(ctx, st);
    st = load_file(ctx, role, &f);
    st_close(&f);
    return st == FT_OK ? FT_OK : failed(ctx, st);
}

ft_status ft_model_get_info(const ft_context *ctx, ft_role role, ft_model_info *info) {
    if (!ctx || !info) return FT_ERR_INVALID_ARGUMENT;
    memset(info, 0, sizeof *info);
    if (role == FT_ROLE_VAE) {
        if (!ctx->vae) return FT_OK;
        const vae_config *c = vae_get_config(ctx->vae);
        info->loaded = 1;
        info->latent_channels = c->latent_channels;
        info->out_channels = c->out_channels;
        info->upscale = 1 << (c->n_blocks - 1);
        info->scaling_factor = c->scaling_factor;
        info->n_params = vae_n_params(ctx->vae);
        return FT_OK;
    }
    const sit_model *m = role == FT_ROLE_PREDICTOR ? &ctx->pred : &ctx->ref;
    int has = role == FT_ROLE_PREDICTOR ? ctx->has_pred : ctx->has_ref;
    if (!has) return FT_OK;
    info->loaded = 1;
    info->input_size = m->cfg.input_size;
    info->in_channels = m->cfg.in_channels;
    info->patch_size = m->cfg.patch;
    info->hidden_size = m->cfg.hidden;
    info->depth = m->cfg.depth;
    info->num_heads = m->cfg.heads;
    info->mlp_hidden = m->cfg.mlp_hidden;
    info->num_classes = m->cfg.num_classes;
    info->learn_sigma = m->cfg.learn_sigma;
    info->guided_channels = m->cfg.guided_channels;
    info->n_params = m->n_params;
    return FT_OK;
}

const char *ft_class_name(const ft_context *ctx, int class_id) {
    if (!ctx || !ctx->has_pred || !ctx->pred.class_name || class_id < 0 || class_id >= ctx->pred.cfg.num_classes)
        return NULL;
    return ctx->pred.class_name[class_id];
}

static int is_pixel_space(const sit_model *m) { return m->cfg.in_channels == 1 || m->cfg.in_channels == 3; }

ft_status ft_get_output_shape(const ft_context *ctx, ft_output_shape *shape) {
    if (!ctx || !shape) return FT_ERR_INVALID_ARGUMENT;
    memset(shape, 0, sizeof *shape);
    if (!ctx->has_pred) return FT_ERR_NOT_LOADED;
    shape->latent_channels = ctx->pred.cfg.in_channels;
    shape->latent_size = ctx->pred.cfg.input_size;
    shape->can_make_images = ctx->vae || is_pixel_space(&ctx->pred);
    shape->image_size = ctx->vae ? vae_image_size(ctx->vae, shape->latent_size) : shape->latent_size;
    return FT_OK;
}

ft_status ft_sampler_check(ft_context *ctx, const char *sampler) {
    ft_sampler_cfg cfg;
    return sampler_parse(sampler, &cfg, ctx ? &ctx->err : NULL);
}

ft_status ft_sampler_describe(const char *sampler, ft_sampler_info *info, char *err, size_t err_size) {
    ft_sampler_cfg cfg;
    ft_err e;
    ft_status st = sampler_parse(sampler, &cfg, &e);
    if (st != FT_OK) {
        if (err && err_size) snprintf(err, err_size, "%s", e.msg);
        return st;
    }
    if (info) {
        memset(info, 0, sizeof *info);
        snprintf(info->name, sizeof info->name, "%s", cfg.name);
        info->euler = cfg.euler;
        info->steps = cfg.steps;
        info->heun_blocks = cfg.n_h;
        info->pseudo_blocks = cfg.n_p;
        info->refiner_blocks = cfg.n_r;
        info->predictor_calls = sampler_predictor_calls(&cfg);
        info->refiner_calls = sampler_refiner_calls(&cfg);
    }
    return FT_OK;
}

void ft_noise(float *out, int n, int channels, int size, uint64_t seed) {
    size_t per_image = (size_t)channels * size * size;
    for (int b = 0; b < n; b++)
        for (size_t j = 0; j < (per_image + 3) / 4; j++) {
            float r[4];
            ft_philox_normal4(seed + (uint64_t)b, j, r);
            for (size_t e = 0; e < 4 && 4 * j + e < per_image; e++) out[(size_t)b * per_image + 4 * j + e] = r[e];
        }
}

/* Checks everything a generate call needs before any work starts. */
static ft_status validate(ft_context *ctx, const ft_generate_params *gp, const ft_sampler_cfg *sc, int want_images) {
    if (!ctx->has_pred)
        return fail(ctx, FT_ERR_NOT_LOADED, "no predictor loaded (ft_load with FT_ROLE_PREDICTOR / --model)");
    const sit_config *pc = &ctx->pred.cfg;
    if (sc->n_r > 0) {
        if (!ctx->has_ref)
            return fail(ctx, FT_ERR_NOT_LOADED, "sampler %s has refiner blocks but no refiner is loaded (--refiner)",
                        sc->name);
        const sit_config *rc = &ctx->ref.cfg;
        if (rc->in_channels != pc->in_channels || rc->input_size != pc->input_size ||
            rc->num_classes != pc->num_classes)
            return fail(ctx, FT_ERR_INVALID_ARGUMENT,
                        "refiner (%d channels, size %d, %d classes) does not match the predictor (%d, %d, %d)",
                        rc->in_channels, rc->input_size, rc->num_classes, pc->in_channels, pc->input_size,
                        pc->num_classes);
    }
    if (want_images && !ctx->vae && !is_pixel_space(&ctx->pred))
        return fail(ctx, FT_ERR_UNSUPPORTED,
                    "the predictor works in a %d-channel latent space: making images needs a VAE decoder (--vae)",
                    pc->in_channels);
    if (want_images && ctx->vae && vae_get_config(ctx->vae)->latent_channels != pc->in_channels)
        return fail(ctx, FT_ERR_INVALID_ARGUMENT, "the VAE takes %d latent channels but the predictor makes %d",
                    vae_get_config(ctx->vae)->latent_channels, pc->in_channels);
    if (gp->num_images < 1) return fail(ctx, FT_ERR_INVALID_ARGUMENT, "num_images must be >= 1");
    if (!gp->labels) return fail(ctx, FT_ERR_INVALID_ARGUMENT, "labels is NULL");
    for (int i = 0; i < gp->num_images; i++)
        if (gp->labels[i] < 0 || gp->labels[i] >= pc->num_classes)
            return fail(ctx, FT_ERR_INVALID_ARGUMENT, "label %d of image %d is outside [0, %d)", gp->labels[i], i,
                        pc->num_classes);
    if (!(gp->cfg_scale == gp->cfg_scale) || gp->cfg_scale > 1e6f || gp->cfg_scale < -1e6f)
        return fail(ctx, FT_ERR_INVALID_ARGUMENT, "cfg_scale must be a finite number");
    return FT_OK;
}

static ft_status get_plan(ft_context *ctx, const ft_plan_env *env, const ft_plan_key *key, ft_plan **out) {
    ctx->tick++;
    for (int i = 0; i < PLAN_CACHE; i++) {
        const ft_plan_key *k = ctx->plans[i] ? plan_key(ctx->plans[i]) : NULL;
        if (k && k->batch == key->batch && k->guided == key->guided && k->decode == key->decode &&
            k->sampler.refine_once == key->sampler.refine_once && strcmp(k->sampler.name, key->sampler.name) == 0) {
            ctx->plan_used[i] = ctx->tick;
            *out = ctx->plans[i];
            return FT_OK;
        }
    }
    int slot = 0;
    for (int i = 0; i < PLAN_CACHE; i++) {
        if (!ctx->plans[i]) { slot = i; break; }
        if (ctx->plan_used[i] < ctx->plan_used[slot]) slot = i;
    }
    plan_free(ctx->be, ctx->plans[slot]);
    ctx->plans[slot] = NULL;
    ft_status st = plan_create(env, key, out, &ctx->err);
    if (st == FT_ERR_OUT_OF_MEMORY) { /* make room: drop every cached plan and retry once */
        drop_activation_buffers(ctx);
        ctx->be->error[0] = 0;
        st = plan_create(env, key, out, &ctx->err);
    }
    if (st != FT_OK) return st;
    ft_log(ctx, FT_LOG_DEBUG, "plan batch %d %s%s: %.1f MiB", key->batch, key->sampler.name,
           key->guided ? " cfg" : "", plan_bytes(*out) / 1048576.0);
    ctx->plans[slot] = *out;
    ctx->plan_used[slot] = ctx->tick;
    return FT_OK;
}

static void on_step(void *user, int k, int n) { progress(user, FT_PHASE_SAMPLING, k, n); }
static void on_decoded(void *user, int n) { progress(user, FT_PHASE_DECODING, n, n); }

ft_status ft_generate(ft_context *ctx, const ft_generate_params *gp, float *latents_out, uint8_t *images_out) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ctx->err.msg[0] = 0;
    if (!gp) return fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_generate: params is NULL");
    ft_status st = need_backend(ctx);
    if (st != FT_OK) return failed(ctx, st);
    ft_sampler_cfg sc;
    st = sampler_parse(gp->sampler, &sc, &ctx->err);
    if (st != FT_OK) return failed(ctx, st);
    st = validate(ctx, gp, &sc, images_out != NULL);
    if (st != FT_OK) return failed(ctx, st);
    const sit_config *pc = &ctx->pred.cfg;
    if (sc.n_r > 0 && ctx->ref.cfg.guided_channels != pc->guided_channels)
        ft_log(ctx, FT_LOG_WARN, "refiner guided_channels %d differs from the predictor's %d; using %d",
               ctx->ref.cfg.guided_channels, pc->guided_channels, pc->guided_channels);
    sc.refine_once = sc.n_r > 0 && ctx->ref.cfg.guided_refiner;
    ft_plan_env env = {ctx->be, &ctx->pred, sc.n_r > 0 ? &ctx->ref : NULL, images_out ? ctx->vae : NULL,
                       pc->guided_channels, on_step, on_decoded, ctx, &ctx->cancel};
    int batch = gp->batch_size > 0 ? gp->batch_size : gp->num_images;
    if (batch > gp->num_images) batch = gp->num_images;
    size_t state = (size_t)pc->in_channels * pc->input_size * pc->input_size;
    ctx->cancel = 0;
    uint64_t *seeds = malloc((size_t)batch * sizeof *seeds);
    if (!seeds) return failed(ctx, fail(ctx, FT_ERR_OUT_OF_MEMORY, "out of host memory"));
    for (int done = 0; done < gp->num_images && st == FT_OK;) {
        int b = gp->num_images - done < batch ? gp->num_images - done : batch;
        ft_plan_key key = {b, gp->cfg_scale > 1.0f, images_out != NULL, sc};
        ft_plan *plan;
        st = get_plan(ctx, &env, &key, &plan);
        if (st != FT_OK) break;
        for (int i = 0; i < b; i++) seeds[i] = gp->seed + (uint64_t)(done + i);
        st = plan_set_inputs(plan, &env, gp->labels + done, gp->cfg_scale, seeds,
                             gp->noise ? gp->noise + (size_t)done * state : NULL, &ctx->err);
        if (st == FT_OK) st = plan_run(plan, &env, ctx->params.use_graphs, &ctx->err);
        if (st == FT_OK && latents_out)
            st = ctx->be->download(ctx->be, latents_out + (size_t)done * state, plan_latents(plan),
                                   (size_t)b * state * sizeof(float));
        if (st == FT_OK && images_out) {
            size_t img = (size_t)plan_image_size(plan) * plan_image_size(plan) * 3;
            st = ctx->be->download(ctx->be, images_out + (size_t)done * img, plan_rgb(plan), (size_t)b * img);
        }
        if (st != FT_OK && !ctx->err.msg[0]) fail(ctx, st, "copying results failed: %s", ctx->be->error);
        done += b;
        if (st == FT_OK && progress(ctx, FT_PHASE_BATCH, done, gp->num_images) && done < gp->num_images)
            st = fail(ctx, FT_ERR_CANCELLED, "cancelled by the progress callback after %d images", done);
    }
    free(seeds);
    return st == FT_OK ? FT_OK : failed(ctx, st);
}

int ft_decoded_size(const ft_context *ctx, int latent_size) {
    if (!ctx || latent_size < 1) return 0;
    return ctx->vae ? vae_image_size(ctx->vae, latent_size) : latent_size;
}

ft_status ft_decode(ft_context *ctx, const float *latents, int n, int latent_size, uint8_t *images_out) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ctx->err.msg[0] = 0;
    ft_status st = need_backend(ctx);
    if (st != FT_OK) return failed(ctx, st);
    if (!latents || !images_out || n < 1 || latent_size < 1 || latent_size > 1024)
        return failed(ctx, fail(ctx, FT_ERR_INVALID_ARGUMENT,
                                "ft_decode: latents, images_out, n >= 1 and latent_size in 1..1024 are required"));
    if (!ctx->has_pred && !ctx->vae)
        return failed(ctx, fail(ctx, FT_ERR_NOT_LOADED, "decoding needs a VAE (--vae) or a pixel-space predictor"));
    ft_backend *be = ctx->be;
    int pixel = !ctx->vae;
    if (pixel && !is_pixel_space(&ctx->pred))
        return failed(ctx, fail(ctx, FT_ERR_NOT_LOADED, "decoding %d-channel latents needs a VAE (--vae)",
                                ctx->pred.cfg.in_channels));
    const vae_config *vc = pixel ? NULL : vae_get_config(ctx->vae);
    int C = pixel ? ctx->pred.cfg.in_channels : vc->latent_channels;
    int S = latent_size;
    int chunk = n < 4 ? n : 4, IS = pixel ? S : vae_image_size(ctx->vae, S);
    int oc = pixel ? C : vc->out_channels;
    size_t state = (size_t)C * S * S, img = (size_t)IS * IS * 3;
    size_t scratch = pixel ? 0 : vae_scratch_bytes(ctx->vae, chunk, S);
    size_t b_lat = (chunk * state * sizeof(float) + 255) & ~(size_t)255;
    size_t b_img = ((size_t)chunk * oc * IS * IS * sizeof(float) + 255) & ~(size_t)255;
    size_t b_scr = (scratch + 255) & ~(size_t)255;
    size_t need = b_lat + b_img + b_scr + chunk * img;
    if (ctx->decode_bytes < need) { /* one allocation, reused by later calls of this size or smaller */
        if (ctx->decode_buf) be->free(be, ctx->decode_buf);
        ctx->decode_buf = NULL;
        ctx->decode_bytes = 0;
        st = be->alloc(be, need, &ctx->decode_buf);
        if (st != FT_OK) return failed(ctx, fail(ctx, st, "cannot allocate decode buffers: %s", be->error));
        ctx->decode_bytes = need;
    }
    void *buf = ctx->decode_buf;
    float *d_lat = buf, *d_img = (float *)((char *)buf + b_lat);
    void *d_scr = (char *)buf + b_lat + b_img;
    uint8_t *d_rgb = (uint8_t *)((char *)buf + b_lat + b_img + b_scr);
    for (int done = 0; done < n && st == FT_OK; done += chunk) {
        int b = n - done < chunk ? n - done : chunk;
        st = be->upload(be, d_lat, latents + (size_t)done * state, (size_t)b * state * sizeof(float));
        if (st != FT_OK) break;
        if (pixel) {
            be->to_rgb8(be, d_rgb, d_lat, b, C, S);
        } else {
            vae_decode(be, ctx->vae, d_scr, d_lat, b, S, d_img);
            be->to_rgb8(be, d_rgb, d_img, b, oc, IS);
        }
        st = be->sync(be);
        if (st == FT_OK) st = be->download(be, images_out + (size_t)done * img, d_rgb, (size_t)b * img);
        if (st == FT_OK) progress(ctx, FT_PHASE_DECODING, done + b, n);
    }
    if (st != FT_OK) return failed(ctx, fail(ctx, st, "decoding failed on the %s backend: %s", be->name, be->error));
    return FT_OK;
}
