/* engine/generate.c — generation: request checks, the plan cache, the batch
 * loop that writes latents, RGB images or pitched RGBA frames (ft_generate;
 * ft_submit runs the same loop, submit.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "finite.h"
#include "sampler.h"

static size_t pixel_bytes(ft_pixel_format f) { return f == FT_PIXELS_RGBA_F32 ? 4 * sizeof(float) : 4; }

static ft_status check_frame(ft_context *ctx, const ft_frame_target *t, int n, int image_size) {
    if (!t->pixels) return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "frame target: pixels is NULL");
    if (t->format != FT_PIXELS_RGBA8 && t->format != FT_PIXELS_RGBA_F32)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "frame target: unknown pixel format %d", (int)t->format);
    if (t->memory != FT_MEMORY_HOST && t->memory != FT_MEMORY_DEVICE)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "frame target: unknown memory kind %d", (int)t->memory);
    size_t px = pixel_bytes(t->format), row = (size_t)image_size * px;
    if (t->row_pitch < row)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "frame target: row_pitch %zu is below a row of %d pixels (%zu bytes)",
                        t->row_pitch, image_size, row);
    size_t align = t->format == FT_PIXELS_RGBA_F32 ? sizeof(float) : 1;
    if (t->row_pitch % align || t->image_pitch % align || (uintptr_t)t->pixels % align)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "frame target: float pixels need 4-byte aligned pixels and pitches");
    size_t image = (size_t)image_size * t->row_pitch;
    if (t->image_pitch && t->image_pitch < image && n > 1)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "frame target: image_pitch %zu is below an image (%d rows of %zu bytes)",
                        t->image_pitch, image_size, t->row_pitch);
    if (t->memory == FT_MEMORY_DEVICE && !ctx->be->host_memory && !ctx->be->event_record)
        return ctx_fail(ctx, FT_ERR_UNSUPPORTED, "frame target: the %s backend cannot write device memory",
                        ctx->be->name);
    return FT_OK;
}

ft_status ctx_check_request(ft_context *ctx, const ft_generate_params *gp, const ctx_outputs *out) {
    if (!gp) return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "generate: params is NULL");
    ft_status st = ctx_need_backend(ctx);
    if (st != FT_OK) return st;
    ft_sampler_cfg sc;
    st = sampler_parse(gp->sampler, &sc, &ctx->err);
    if (st != FT_OK) return st;
    const sit_model *pred = ctx_pred(ctx), *ref = ctx_ref(ctx);
    const vae_model *vae = ctx_vae(ctx);
    int want_images = out->rgb || out->frame;
    if (!pred)
        return ctx_fail(ctx, FT_ERR_NOT_LOADED, "no predictor loaded (ft_load with FT_ROLE_PREDICTOR / --model)");
    const sit_config *pc = &pred->cfg;
    if (sc.n_r > 0) {
        if (!ref)
            return ctx_fail(ctx, FT_ERR_NOT_LOADED,
                            "sampler %s has refiner blocks but no refiner is loaded (--refiner)", sc.name);
        const sit_config *rc = &ref->cfg;
        if (rc->in_channels != pc->in_channels || rc->input_size != pc->input_size ||
            rc->num_classes != pc->num_classes)
            return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT,
                            "refiner (%d channels, size %d, %d classes) does not match the predictor (%d, %d, %d)",
                            rc->in_channels, rc->input_size, rc->num_classes, pc->in_channels, pc->input_size,
                            pc->num_classes);
    }
    if (want_images && !vae && !ctx_is_pixel_space(pred))
        return ctx_fail(ctx, FT_ERR_UNSUPPORTED,
                        "the predictor works in a %d-channel latent space: making images needs a VAE decoder (--vae)",
                        pc->in_channels);
    if (want_images && vae && vae_get_config(vae)->latent_channels != pc->in_channels)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "the VAE takes %d latent channels but the predictor makes %d",
                        vae_get_config(vae)->latent_channels, pc->in_channels);
    st = ctx_check_sequence(ctx, "the predictor", pc->tokens);
    if (st == FT_OK && sc.n_r > 0) st = ctx_check_sequence(ctx, "the refiner", ref->cfg.tokens);
    if (st == FT_OK && want_images && vae) st = ctx_check_vae_size(ctx, pc->input_size);
    if (st != FT_OK) return st;
    if (gp->num_images < 1) return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "num_images must be >= 1");
    if (gp->class_weights) {
        size_t n = (size_t)gp->num_images * pc->num_classes;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(gp->class_weights[i]))
                return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "class_weights[%zu][%zu] (image %zu, class %zu) is not finite",
                                i / pc->num_classes, i % pc->num_classes, i / pc->num_classes, i % pc->num_classes);
    } else {
        if (!gp->labels) return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "labels is NULL (and no class_weights)");
        for (int i = 0; i < gp->num_images; i++)
            if (gp->labels[i] < 0 || gp->labels[i] >= pc->num_classes)
                return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "label %d of image %d is outside [0, %d)", gp->labels[i],
                                i, pc->num_classes);
    }
    if (!(gp->cfg_scale == gp->cfg_scale)) return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "cfg_scale is NaN");
    if (gp->cfg_scale > FT_MAX_CFG_SCALE || gp->cfg_scale < -FT_MAX_CFG_SCALE)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "cfg_scale %g is outside [-%g, %g]", (double)gp->cfg_scale,
                        (double)FT_MAX_CFG_SCALE, (double)FT_MAX_CFG_SCALE);
    if (gp->noise) {
        size_t per_image = (size_t)pc->in_channels * pc->input_size * pc->input_size;
        size_t n = (size_t)gp->num_images * per_image, i = finite_scan_f32(gp->noise, n);
        if (i < n)
            return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "noise: image %zu holds %s at element %zu", i / per_image,
                            finite_kind(gp->noise, FT_DTYPE_F32, i), i % per_image);
    }
    if (out->frame) {
        int image_size = vae ? vae_image_size(vae, pc->input_size) : pc->input_size;
        st = check_frame(ctx, out->frame, gp->num_images, image_size);
        if (st != FT_OK) return st;
    }
    if (sc.n_r > 0 && ref->cfg.guided_channels != pc->guided_channels)
        ctx_log(ctx, FT_LOG_WARN, "refiner guided_channels %d differs from the predictor's %d; using %d",
                ref->cfg.guided_channels, pc->guided_channels, pc->guided_channels);
    return FT_OK;
}

/* The message of a batch whose results hold NaN or Inf (nothing of it is returned). */
static ft_status nonfinite_batch(ft_context *ctx, const ft_plan *plan, const ft_sampler_cfg *sc, int done, int b,
                                 int total, int image) {
    int step = 0;
    if (plan) plan_nonfinite(plan, &step, &image);
    char where[96];
    if (step == 0) snprintf(where, sizeof where, "the final latents (this backend does not check each step)");
    else if (step > sc->steps) snprintf(where, sizeof where, "the VAE decoder's output");
    else snprintf(where, sizeof where, "the sampler state after step %d of %d", step, sc->steps);
    return ctx_fail(ctx, FT_ERR_NUMERIC,
                    "batch of images %d..%d (of %d): NaN or Inf in %s, first in image %d; the computation overflowed "
                    "(weights or inputs too large?) and nothing of this batch was returned",
                    done, done + b - 1, total, where, done + image);
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
        ctx_drop_activation_buffers(ctx);
        ctx->be->error[0] = 0;
        st = plan_create(env, key, out, &ctx->err);
    }
    if (st != FT_OK) return st;
    ctx_log(ctx, FT_LOG_DEBUG, "plan batch %d %s%s: %.1f MiB", key->batch, key->sampler.name,
            key->guided ? " cfg" : "", plan_bytes(*out) / 1048576.0);
    ctx->plans[slot] = *out;
    ctx->plan_used[slot] = ctx->tick;
    return FT_OK;
}

static void on_step(void *user, int k, int n) { ctx_progress(user, FT_PHASE_SAMPLING, k, n); }
static void on_decoded(void *user, int n) { ctx_progress(user, FT_PHASE_DECODING, n, n); }

/* Host frames on a device backend: tight frames in the stage buffer, then copied row by row. */
static ft_status frame_via_stage(ft_context *ctx, const ft_plan *plan, const ft_frame_target *t, char *dst, int b,
                                 size_t ipitch) {
    ft_backend *be = ctx->be;
    int IS = plan_image_size(plan);
    size_t row = (size_t)IS * pixel_bytes(t->format), img = row * IS;
    be->to_pixels(be, ctx->stage, t->format, row, img, plan_image(plan), b, plan_image_channels(plan), IS);
    ft_status st = be->sync(be);
    for (int k = 0; k < b && st == FT_OK; k++) {
        const char *src = (const char *)ctx->stage + (size_t)k * img;
        if (t->row_pitch == row) st = be->download(be, dst + (size_t)k * ipitch, src, img);
        else
            for (int y = 0; y < IS && st == FT_OK; y++)
                st = be->download(be, dst + (size_t)k * ipitch + (size_t)y * t->row_pitch, src + (size_t)y * row, row);
    }
    return st;
}

/* The frames of one batch: images done .. done + b - 1. */
static ft_status write_frames(ft_context *ctx, const ft_plan *plan, const ft_frame_target *t, int done, int b) {
    ft_backend *be = ctx->be;
    int IS = plan_image_size(plan);
    size_t ipitch = t->image_pitch ? t->image_pitch : (size_t)IS * t->row_pitch;
    char *dst = (char *)t->pixels + (size_t)done * ipitch;
    if (!be->host_memory && t->memory == FT_MEMORY_HOST) return frame_via_stage(ctx, plan, t, dst, b, ipitch);
    be->to_pixels(be, dst, t->format, t->row_pitch, ipitch, plan_image(plan), b, plan_image_channels(plan), IS);
    return FT_OK;
}

/* Makes the backend's stream wait for the work the caller enqueued on its stream so far. */
static ft_status join_caller_stream(ft_context *ctx, const ctx_outputs *out) {
    ft_backend *be = ctx->be;
    void *stream = out->frame->stream ? out->frame->stream : FT_DEFAULT_STREAM;
    ft_status st = be->event_record(be, out->join_event, stream);
    if (st == FT_OK) st = be->stream_wait_event(be, NULL, out->join_event);
    return st;
}

ft_status ctx_generate(ft_context *ctx, const ft_generate_params *gp, const ctx_outputs *out) {
    ft_backend *be = ctx->be;
    ft_sampler_cfg sc;
    ft_status st = sampler_parse(gp->sampler, &sc, &ctx->err);
    if (st != FT_OK) return st;
    const sit_model *pred = ctx_pred(ctx);
    const sit_config *pc = &pred->cfg;
    int want_images = out->rgb || out->frame;
    sc.refine_once = sc.n_r > 0 && ctx_ref(ctx) && ctx_ref(ctx)->cfg.guided_refiner; /* refiner_kind guided */
    ft_plan_env env = {be, pred, sc.n_r > 0 ? ctx_ref(ctx) : NULL, want_images ? ctx_vae(ctx) : NULL,
                       pc->guided_channels, on_step, on_decoded, ctx, &ctx->cancel};
    int batch = gp->batch_size > 0 ? gp->batch_size : gp->num_images;
    if (batch > gp->num_images) batch = gp->num_images;
    size_t state = (size_t)pc->in_channels * pc->input_size * pc->input_size;
    if (out->frame && out->frame->memory == FT_MEMORY_HOST && !be->host_memory) {
        int IS = ctx_vae(ctx) ? vae_image_size(ctx_vae(ctx), pc->input_size) : pc->input_size;
        size_t need = (size_t)batch * IS * IS * pixel_bytes(out->frame->format);
        if (ctx->stage_bytes < need) {
            if (ctx->stage) be->free(be, ctx->stage);
            ctx->stage = NULL;
            ctx->stage_bytes = 0;
            if ((st = be->alloc(be, need, &ctx->stage)) != FT_OK)
                return ctx_fail(ctx, st, "cannot allocate the frame buffer: %s", be->error);
            ctx->stage_bytes = need;
        }
    }
    ctx->cancel = 0;
    uint64_t *seeds = malloc((size_t)batch * sizeof *seeds);
    /* backends that do not check each step: the final latents are checked on the host */
    int host_check = !be->host_memory && !out->latents && !out->enqueue_only;
    float *check = host_check ? malloc((size_t)batch * state * sizeof(float)) : NULL;
    if (!seeds || (host_check && !check)) {
        free(seeds);
        return ctx_fail(ctx, FT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int done = 0; done < gp->num_images && st == FT_OK;) {
        int b = gp->num_images - done < batch ? gp->num_images - done : batch;
        ft_plan_key key = {b, gp->cfg_scale > 1.0f, want_images, sc};
        ft_plan *plan;
        st = get_plan(ctx, &env, &key, &plan);
        if (st != FT_OK) break;
        for (int i = 0; i < b; i++) seeds[i] = gp->seeds ? gp->seeds[done + i] : gp->seed + (uint64_t)(done + i);
        st = plan_set_inputs(plan, &env, gp->labels ? gp->labels + done : NULL,
                             gp->class_weights ? gp->class_weights + (size_t)done * pc->num_classes : NULL,
                             gp->cfg_scale, seeds, gp->noise ? gp->noise + (size_t)done * state : NULL, &ctx->err);
        if (st == FT_OK && out->enqueue_only) {
            if (done == 0) st = join_caller_stream(ctx, out);
            if (st == FT_OK) st = plan_enqueue(plan, &env, ctx->params.use_graphs, &ctx->err);
            if (st == FT_OK) st = write_frames(ctx, plan, out->frame, done, b);
            done += b;
            continue;
        }
        if (st == FT_OK) st = plan_run(plan, &env, ctx->params.use_graphs, &ctx->err);
        if (st == FT_ERR_NUMERIC) st = nonfinite_batch(ctx, plan, &sc, done, b, gp->num_images, 0);
        if (st == FT_OK && out->latents)
            st = be->download(be, out->latents + (size_t)done * state, plan_latents(plan),
                              (size_t)b * state * sizeof(float));
        if (st == FT_OK && !be->host_memory) {
            const float *lat = out->latents ? out->latents + (size_t)done * state : check;
            if (!out->latents)
                st = be->download(be, check, plan_latents(plan), (size_t)b * state * sizeof(float));
            size_t i = st == FT_OK ? finite_scan_f32(lat, (size_t)b * state) : 0;
            if (st == FT_OK && i < (size_t)b * state)
                st = nonfinite_batch(ctx, NULL, &sc, done, b, gp->num_images, (int)(i / state));
        }
        if (st == FT_OK && out->rgb) {
            size_t img = (size_t)plan_image_size(plan) * plan_image_size(plan) * 3;
            st = be->download(be, out->rgb + (size_t)done * img, plan_rgb(plan), (size_t)b * img);
        }
        if (st == FT_OK && out->frame) st = write_frames(ctx, plan, out->frame, done, b);
        if (st == FT_OK) st = be->sync(be);
        if (st != FT_OK && !ctx->err.msg[0]) ctx_fail(ctx, st, "copying results failed: %s", be->error);
        done += b;
        if (st == FT_OK && ctx_progress(ctx, FT_PHASE_BATCH, done, gp->num_images) && done < gp->num_images)
            st = ctx_fail(ctx, FT_ERR_CANCELLED, "cancelled by the progress callback after %d images", done);
    }
    if (st != FT_OK && !ctx->err.msg[0]) ctx_fail(ctx, st, "generation failed on the %s backend: %s", be->name, be->error);
    free(seeds);
    free(check);
    return st;
}

ft_status ft_generate(ft_context *ctx, const ft_generate_params *gp, float *latents_out, uint8_t *images_out) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ft_status st = ctx_busy(ctx);
    if (st != FT_OK) return st;
    ctx->err.msg[0] = 0;
    ctx_outputs out = {latents_out, images_out, NULL, 0, NULL};
    st = ctx_check_request(ctx, gp, &out);
    if (st != FT_OK) return ctx_failed(ctx, st);
    ctx_enter(ctx);
    st = ctx_generate(ctx, gp, &out);
    ctx_leave(ctx);
    return st == FT_OK ? FT_OK : ctx_failed(ctx, st);
}
