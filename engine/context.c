/* engine/context.c — the public API (flowturbo.h): context lifetime, model
 * loading (shared models), model information, samplers, decoding.
 * Generation is in generate.c, ft_submit in submit.c. */
#include "context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../kernels/common/philox.h"
#include "finite.h"
#include "safetensors.h"
#include "sampler.h"

void ctx_log(ft_context *ctx, ft_log_level level, const char *fmt, ...) {
    if (!ctx->params.log_cb) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->params.log_cb(level, msg, ctx->params.log_user);
}

ft_status ctx_fail(ft_context *ctx, ft_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err.msg, sizeof ctx->err.msg, fmt, ap);
    va_end(ap);
    return st;
}

ft_status ctx_failed(ft_context *ctx, ft_status st) {
    ctx_log(ctx, FT_LOG_ERROR, "%s", ctx->err.msg);
    return st;
}

int ctx_progress(ft_context *ctx, ft_phase phase, int step, int total) {
    if (!ctx->params.progress_cb) return 0;
    if (ctx->params.progress_cb(phase, step, total, ctx->params.progress_user)) ctx->cancel = 1;
    return ctx->cancel;
}

void ctx_enter(ft_context *ctx) {
    if (ctx->be && ctx->be->enter) ctx->be->enter(ctx->be);
}

void ctx_leave(ft_context *ctx) {
    if (ctx->be && ctx->be->leave) ctx->be->leave(ctx->be);
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

static ft_context *context_create(const ft_context_params *params) {
    ft_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    if (params) ctx->params = *params;
    else ft_context_params_init(&ctx->params);
    if (ctx->params.n_threads > FT_MAX_THREADS) {
        snprintf(ctx->backend_error, sizeof ctx->backend_error,
                 "n_threads %d is above the limit of %d (<= 0 uses every core, and more than the cores is capped)",
                 ctx->params.n_threads, FT_MAX_THREADS);
    } else {
        ctx->be = ft_backend_create(ctx->params.backend, ctx->params.device, ctx->params.n_threads,
                                    ctx->params.compute_dtype, ctx->backend_error, sizeof ctx->backend_error);
        ctx_leave(ctx);
    }
    if (!ctx->be) {
        ctx_fail(ctx, FT_ERR_UNSUPPORTED, "cannot start the compute backend: %s", ctx->backend_error);
        ctx_log(ctx, FT_LOG_ERROR, "%s", ctx->err.msg);
    } else {
        ctx_log(ctx, FT_LOG_INFO, "backend: %s", ctx->be->name);
    }
    return ctx;
}

ft_context *ft_context_new(const ft_context_params *params) { return context_create(params); }

ft_context *ft_context_new_shared(const ft_context_params *params, const ft_context *source) {
    ft_context_params p;
    if (params) p = *params;
    else ft_context_params_init(&p);
    if (source) { /* the weights' layout depends on these */
        p.backend = source->be && strcmp(source->be->name, "cuda") == 0 ? FT_BACKEND_CUDA : FT_BACKEND_CPU;
        p.device = source->params.device;
        p.compute_dtype = source->params.compute_dtype;
    }
    ft_context *ctx = context_create(&p);
    if (!ctx || !ctx->be) return ctx;
    if (!source || !source->be) {
        snprintf(ctx->backend_error, sizeof ctx->backend_error, "ft_context_new_shared: the source context %s",
                 source ? "has no backend" : "is NULL");
        ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "%s", ctx->backend_error);
        ctx->be->destroy(ctx->be);
        ctx->be = NULL;
        return ctx;
    }
    for (int r = 0; r < 3; r++) ctx->model[r] = model_ref_retain(source->model[r]);
    return ctx;
}

void ctx_drop_activation_buffers(ft_context *ctx) {
    for (int i = 0; i < PLAN_CACHE; i++) {
        plan_free(ctx->be, ctx->plans[i]);
        ctx->plans[i] = NULL;
    }
    if (ctx->decode_buf) ctx->be->free(ctx->be, ctx->decode_buf);
    ctx->decode_buf = NULL;
    ctx->decode_bytes = 0;
    if (ctx->stage) ctx->be->free(ctx->be, ctx->stage);
    ctx->stage = NULL;
    ctx->stage_bytes = 0;
}

void ft_context_free(ft_context *ctx) {
    if (!ctx) return;
    ctx_job_free(ctx);
    if (ctx->be) {
        ctx_drop_activation_buffers(ctx);
        for (int r = 0; r < 3; r++) model_ref_release(ctx->be, ctx->model[r]);
        ctx->be->destroy(ctx->be);
    }
    free(ctx);
}

const char *ft_last_error(const ft_context *ctx) {
    if (!ctx) return "no context";
    if (ctx_job_running(ctx)) return "a job submitted with ft_submit is running (its message comes with ft_wait)";
    return ctx->err.msg;
}

const char *ft_backend_name(const ft_context *ctx) { return ctx && ctx->be ? ctx->be->name : "none"; }

ft_status ctx_need_backend(ft_context *ctx) {
    if (ctx->be) return FT_OK;
    return ctx_fail(ctx, FT_ERR_UNSUPPORTED, "no compute backend: %s", ctx->backend_error);
}

static int load_progress(int done, int total, void *user) { return ctx_progress(user, FT_PHASE_LOADING, done, total); }

/* Binds a loaded model to a role of this context, releasing the previous one. */
static void bind_model(ft_context *ctx, ft_role role, model_ref *m) {
    ctx_drop_activation_buffers(ctx);
    model_ref_release(ctx->be, ctx->model[role]);
    ctx->model[role] = m;
}

/* Loads an opened file into a role, replacing the previous model on success. */
static ft_status load_file(ft_context *ctx, ft_role role, st_file *f) {
    ft_status st;
    ctx->cancel = 0;
    model_ref *ref;
    if (role == FT_ROLE_VAE) {
        vae_model *vae = NULL;
        st = vae_load(ctx->be, f, &vae, load_progress, ctx, &ctx->err);
        if (st != FT_OK) return st;
        if (!(ref = model_ref_wrap_vae(ctx->be, vae))) return ctx_fail(ctx, FT_ERR_OUT_OF_MEMORY, "out of host memory");
        bind_model(ctx, role, ref);
        ctx_log(ctx, FT_LOG_INFO, "loaded VAE %s (%zu params)", f->path, vae_n_params(vae));
        return FT_OK;
    }
    sit_model m;
    st = sit_load(ctx->be, f, role, &m, load_progress, ctx, &ctx->err);
    if (st != FT_OK) return st;
    if (!(ref = model_ref_wrap_sit(ctx->be, role, &m))) return ctx_fail(ctx, FT_ERR_OUT_OF_MEMORY, "out of host memory");
    bind_model(ctx, role, ref);
    ctx_log(ctx, FT_LOG_INFO, "loaded %s %s: %d blocks, hidden %d, %d heads, patch %d, %dx%dx%d, %zu params",
           role == FT_ROLE_PREDICTOR ? "predictor" : "refiner", f->path, m.cfg.depth, m.cfg.hidden, m.cfg.heads,
           m.cfg.patch, m.cfg.in_channels, m.cfg.input_size, m.cfg.input_size, m.n_params);
    return FT_OK;
}

static ft_status check_load_args(ft_context *ctx, ft_role role, const void *source) {
    if (!source) return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_load: path/data is NULL");
    if (role != FT_ROLE_PREDICTOR && role != FT_ROLE_REFINER && role != FT_ROLE_VAE)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_load: unknown role %d", (int)role);
    return ctx_need_backend(ctx);
}

ft_status ft_load(ft_context *ctx, ft_role role, const char *path) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ft_status st = ctx_busy(ctx);
    if (st != FT_OK) return st;
    ctx->err.msg[0] = 0;
    st = check_load_args(ctx, role, path);
    if (st != FT_OK) return ctx_failed(ctx, st);
    st_file f;
    st = st_open(&f, path, &ctx->err);
    if (st != FT_OK) return ctx_failed(ctx, st);
    ctx_enter(ctx);
    st = load_file(ctx, role, &f);
    ctx_leave(ctx);
    st_close(&f);
    return st == FT_OK ? FT_OK : ctx_failed(ctx, st);
}

ft_status ft_load_memory(ft_context *ctx, ft_role role, const void *data, size_t size, const char *name) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ft_status st = ctx_busy(ctx);
    if (st != FT_OK) return st;
    ctx->err.msg[0] = 0;
    st = check_load_args(ctx, role, data);
    if (st != FT_OK) return ctx_failed(ctx, st);
    st_file f;
    st = st_open_memory(&f, data, size, name ? name : "(memory)", &ctx->err);
    if (st != FT_OK) return ctx_failed(ctx, st);
    ctx_enter(ctx);
    st = load_file(ctx, role, &f);
    ctx_leave(ctx);
    st_close(&f);
    return st == FT_OK ? FT_OK : ctx_failed(ctx, st);
}

ft_status ft_model_get_info(const ft_context *ctx, ft_role role, ft_model_info *info) {
    if (!ctx || !info) return FT_ERR_INVALID_ARGUMENT;
    memset(info, 0, sizeof *info);
    if (role == FT_ROLE_VAE) {
        const vae_model *vae = ctx_vae(ctx);
        if (!vae) return FT_OK;
        const vae_config *c = vae_get_config(vae);
        info->loaded = 1;
        info->latent_channels = c->latent_channels;
        info->out_channels = c->out_channels;
        info->upscale = 1 << (c->n_blocks - 1);
        info->scaling_factor = c->scaling_factor;
        info->n_params = vae_n_params(vae);
        return FT_OK;
    }
    const sit_model *m = role == FT_ROLE_PREDICTOR ? ctx_pred(ctx) : role == FT_ROLE_REFINER ? ctx_ref(ctx) : NULL;
    if (!m) return FT_OK;
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
    const sit_model *m = ctx ? ctx_pred(ctx) : NULL;
    if (!m || !m->class_name || class_id < 0 || class_id >= m->cfg.num_classes) return NULL;
    return m->class_name[class_id];
}

int ft_class_id(const ft_context *ctx, const char *name) {
    const sit_model *m = ctx ? ctx_pred(ctx) : NULL;
    if (!m || !m->class_name || !name) return -1;
    for (int c = 0; c < m->cfg.num_classes; c++)
        if (m->class_name[c] && strcasecmp(m->class_name[c], name) == 0) return c;
    return -1;
}

int ctx_is_pixel_space(const sit_model *m) { return m->cfg.in_channels == 1 || m->cfg.in_channels == 3; }

ft_status ft_get_output_shape(const ft_context *ctx, ft_output_shape *shape) {
    if (!ctx || !shape) return FT_ERR_INVALID_ARGUMENT;
    memset(shape, 0, sizeof *shape);
    const sit_model *pred = ctx_pred(ctx);
    const vae_model *vae = ctx_vae(ctx);
    if (!pred) return FT_ERR_NOT_LOADED;
    shape->latent_channels = pred->cfg.in_channels;
    shape->latent_size = pred->cfg.input_size;
    shape->can_make_images = vae || ctx_is_pixel_space(pred);
    shape->image_size = vae ? vae_image_size(vae, shape->latent_size) : shape->latent_size;
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
        cfg.refine_once = 0; /* the refiner's kind comes from the loaded file, not from the string: give both */
        info->refiner_calls = sampler_refiner_calls(&cfg);
        cfg.refine_once = 1;
        info->guided_refiner_calls = sampler_refiner_calls(&cfg);
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

int ft_decoded_size(const ft_context *ctx, int latent_size) {
    if (!ctx || latent_size < 1) return 0;
    const vae_model *vae = ctx_vae(ctx);
    return vae ? vae_image_size(vae, latent_size) : latent_size;
}

ft_status ctx_check_sequence(ft_context *ctx, const char *what, long tokens) {
    long max = ctx->be->max_attention_tokens;
    if (max > 0 && tokens > max)
        return ctx_fail(ctx, FT_ERR_UNSUPPORTED, "%s needs attention over %ld tokens; the %s backend supports at most %ld",
                        what, tokens, ctx->be->name, max);
    return FT_OK;
}

ft_status ctx_check_vae_size(ft_context *ctx, int latent_size) {
    char what[96];
    snprintf(what, sizeof what, "decoding %dx%d latents (the VAE's mid-block)", latent_size, latent_size);
    return ctx_check_sequence(ctx, what, (long)latent_size * latent_size);
}

static ft_status decode(ft_context *ctx, const float *latents, int n, int latent_size, uint8_t *images_out) {
    ft_backend *be = ctx->be;
    const sit_model *pred = ctx_pred(ctx);
    const vae_model *vae = ctx_vae(ctx);
    ft_status st = FT_OK;
    int pixel = !vae;
    const vae_config *vc = pixel ? NULL : vae_get_config(vae);
    int C = pixel ? pred->cfg.in_channels : vc->latent_channels;
    int S = latent_size;
    size_t per_latent = (size_t)C * S * S, bad = finite_scan_f32(latents, (size_t)n * per_latent);
    if (bad < (size_t)n * per_latent)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "latents: image %zu holds %s at element %zu", bad / per_latent,
                        finite_kind(latents, FT_DTYPE_F32, bad), bad % per_latent);
    int chunk = n < 4 ? n : 4, IS = pixel ? S : vae_image_size(vae, S);
    int oc = pixel ? C : vc->out_channels;
    size_t state = (size_t)C * S * S, img = (size_t)IS * IS * 3;
    size_t scratch = pixel ? 0 : vae_scratch_bytes(be, vae, chunk, S);
    size_t b_lat = (chunk * state * sizeof(float) + 255) & ~(size_t)255;
    size_t b_img = ((size_t)chunk * oc * IS * IS * sizeof(float) + 255) & ~(size_t)255;
    size_t b_scr = (scratch + 255) & ~(size_t)255;
    size_t need = b_lat + b_img + b_scr + chunk * img;
    if (ctx->decode_bytes < need) { /* one allocation, reused by later calls of this size or smaller */
        if (ctx->decode_buf) be->free(be, ctx->decode_buf);
        ctx->decode_buf = NULL;
        ctx->decode_bytes = 0;
        st = be->alloc(be, need, &ctx->decode_buf);
        if (st != FT_OK) return ctx_fail(ctx, st, "cannot allocate decode buffers: %s", be->error);
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
            vae_decode(be, vae, d_scr, d_lat, b, S, d_img);
            size_t per_image = (size_t)oc * IS * IS, i = be->host_memory ? finite_scan_f32(d_img, b * per_image) : 0;
            if (be->host_memory && i < b * per_image)
                return ctx_fail(ctx, FT_ERR_NUMERIC, "decoding image %zu: NaN or Inf in the VAE decoder's output "
                                "(the computation overflowed); no image was returned", done + i / per_image);
            be->to_rgb8(be, d_rgb, d_img, b, oc, IS);
        }
        st = be->sync(be);
        if (st == FT_OK) st = be->download(be, images_out + (size_t)done * img, d_rgb, (size_t)b * img);
        if (st == FT_OK && ctx_progress(ctx, FT_PHASE_DECODING, done + b, n) && done + b < n)
            return ctx_fail(ctx, FT_ERR_CANCELLED, "cancelled by the progress callback after %d images", done + b);
    }
    if (st != FT_OK) return ctx_fail(ctx, st, "decoding failed on the %s backend: %s", be->name, be->error);
    return FT_OK;
}

ft_status ft_decode(ft_context *ctx, const float *latents, int n, int latent_size, uint8_t *images_out) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ft_status st = ctx_busy(ctx);
    if (st != FT_OK) return st;
    ctx->err.msg[0] = 0;
    st = ctx_need_backend(ctx);
    if (st != FT_OK) return ctx_failed(ctx, st);
    if (!latents || !images_out || n < 1 || latent_size < 1 || latent_size > 1024)
        return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT,
                                        "ft_decode: latents, images_out, n >= 1 and latent_size in 1..1024 are required"));
    const sit_model *pred = ctx_pred(ctx);
    if (!pred && !ctx_vae(ctx))
        return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_NOT_LOADED, "decoding needs a VAE (--vae) or a pixel-space predictor"));
    if (!ctx_vae(ctx) && !ctx_is_pixel_space(pred))
        return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_NOT_LOADED, "decoding %d-channel latents needs a VAE (--vae)",
                                        pred->cfg.in_channels));
    if (ctx_vae(ctx) && ctx_check_vae_size(ctx, latent_size) != FT_OK) return ctx_failed(ctx, FT_ERR_UNSUPPORTED);
    ctx_enter(ctx);
    st = decode(ctx, latents, n, latent_size, images_out);
    ctx_leave(ctx);
    return st == FT_OK ? FT_OK : ctx_failed(ctx, st);
}
