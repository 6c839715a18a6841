/*
 * engine/context.h — the context behind the public API (private to the
 * library): backend, the models of each role (shared, model_ref.h), the plan
 * cache, and the state of a submitted job (submit.c).
 */
#ifndef FT_CONTEXT_H
#define FT_CONTEXT_H

#include "errors.h"
#include "model_ref.h"
#include "plan.h"

#define PLAN_CACHE 4

typedef struct ft_job ft_job;

struct ft_context {
    ft_context_params params;
    ft_backend *be;
    char backend_error[512];
    ft_err err;
    model_ref *model[3]; /* by ft_role; NULL: not loaded */
    ft_plan *plans[PLAN_CACHE];
    uint64_t plan_used[PLAN_CACHE];
    void *decode_buf; /* ft_decode's buffers, kept across calls (grown when a call needs more) */
    size_t decode_bytes;
    void *stage; /* device frames for host targets on device backends (grown) */
    size_t stage_bytes;
    uint64_t tick;
    volatile int cancel;
    ft_job *job; /* submit.c; NULL until the first ft_submit */
};

static inline const sit_model *ctx_pred(const ft_context *c) {
    return c->model[FT_ROLE_PREDICTOR] ? &c->model[FT_ROLE_PREDICTOR]->sit : NULL;
}
static inline const sit_model *ctx_ref(const ft_context *c) {
    return c->model[FT_ROLE_REFINER] ? &c->model[FT_ROLE_REFINER]->sit : NULL;
}
static inline const vae_model *ctx_vae(const ft_context *c) {
    return c->model[FT_ROLE_VAE] ? c->model[FT_ROLE_VAE]->vae : NULL;
}

/* Where a generation's results go (any may be NULL). */
typedef struct {
    float *latents;               /* host [n, C, S, S] */
    uint8_t *rgb;                 /* host [n, H, W, 3] */
    const ft_frame_target *frame; /* pitched RGBA frames */
    int enqueue_only;             /* frame in device memory on a stream backend: no host wait (ft_submit) */
    void *join_event;             /* enqueue_only: recorded on the frame's stream, waited for by the backend's */
} ctx_outputs;

/* The backend's per-call hooks around every public call that computes (CPU: thread count in, worker threads
 * released out). */
void ctx_enter(ft_context *ctx);
void ctx_leave(ft_context *ctx);
/* FT_ERR_UNSUPPORTED with the reason when the context has no backend. */
ft_status ctx_need_backend(ft_context *ctx);
/* Frees every per-configuration buffer (plans, decode and frame buffers): on model changes and to retry after OOM. */
void ctx_drop_activation_buffers(ft_context *ctx);
int ctx_is_pixel_space(const sit_model *m);
/* Attention over `tokens` positions within what the backend supports (checked before any work). */
ft_status ctx_check_sequence(ft_context *ctx, const char *what, long tokens);
/* The VAE's mid-block attends over all latent_size^2 positions. */
ft_status ctx_check_vae_size(ft_context *ctx, int latent_size);

/* The log callback (when set) and the progress callback (1: cancel requested, also kept in ctx->cancel). */
void ctx_log(ft_context *ctx, ft_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ctx_progress(ft_context *ctx, ft_phase phase, int step, int total);

/* Records a message in ctx->err and returns st. */
ft_status ctx_fail(ft_context *ctx, ft_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Logs the message already in ctx->err (as an error) and returns st. */
ft_status ctx_failed(ft_context *ctx, ft_status st);
/* Checks a request before any work: everything ctx_generate needs. */
ft_status ctx_check_request(ft_context *ctx, const ft_generate_params *gp, const ctx_outputs *out);
/* Runs a checked request batch by batch into out (enter/leave are the caller's). */
ft_status ctx_generate(ft_context *ctx, const ft_generate_params *gp, const ctx_outputs *out);
/* FT_ERR_BUSY when a submitted job is running (submit.c); ctx->err is left alone (the job owns it). */
ft_status ctx_busy(ft_context *ctx);
int ctx_job_running(const ft_context *ctx);
/* Ends the job machinery: waits for a pending job, stops the worker (submit.c). */
void ctx_job_free(ft_context *ctx);

#endif
