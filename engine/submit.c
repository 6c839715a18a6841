/* engine/submit.c — ft_submit / ft_wait / ft_pending: generation into caller
 * frames without blocking the caller.
 *  - CUDA backend, device memory: the job is enqueued on the backend's stream
 *    between two events (the caller's stream -> ours -> the caller's), with
 *    no host round trip; ft_wait waits on the completion event only.
 *  - otherwise (CPU backend; host memory on CUDA): the context's worker
 *    thread runs the job. It is started by the first ft_submit and sleeps on
 *    a condition variable between jobs (it never spins). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"

enum { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct ft_job {
    atomic_int pending; /* from a successful ft_submit until ft_wait */
    int on_stream;      /* the pending job is a stream job (no worker) */
    /* worker */
    pthread_t thread;
    int thread_started, quit, state;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ft_status status;
    /* the copied request */
    ft_generate_params gp;
    char sampler[64];
    ft_frame_target target;
    void *buf;
    size_t buf_bytes;
    /* stream jobs */
    void *ev_join, *ev_done;
};

int ctx_job_running(const ft_context *ctx) { return ctx->job && atomic_load(&ctx->job->pending); }

ft_status ctx_busy(ft_context *ctx) { return ctx_job_running(ctx) ? FT_ERR_BUSY : FT_OK; }

void ft_frame_target_init(ft_frame_target *t) {
    memset(t, 0, sizeof *t);
    t->memory = FT_MEMORY_HOST;
    t->format = FT_PIXELS_RGBA8;
}

static void *worker_main(void *arg) {
    ft_context *ctx = arg;
    ft_job *job = ctx->job;
    pthread_mutex_lock(&job->mu);
    for (;;) {
        while (!job->quit && job->state != JOB_QUEUED) pthread_cond_wait(&job->cv, &job->mu);
        if (job->quit) break;
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&job->mu);
        ctx_outputs out = {NULL, NULL, &job->target, 0, NULL};
        ctx->err.msg[0] = 0;
        ctx_enter(ctx);
        ft_status st = ctx_generate(ctx, &job->gp, &out);
        ctx_leave(ctx);
        pthread_mutex_lock(&job->mu);
        job->status = st;
        job->state = JOB_DONE;
        pthread_cond_broadcast(&job->cv);
    }
    pthread_mutex_unlock(&job->mu);
    return NULL;
}

static ft_status job_create(ft_context *ctx) {
    if (ctx->job) return FT_OK;
    ft_job *job = calloc(1, sizeof *job);
    if (!job) return ctx_fail(ctx, FT_ERR_OUT_OF_MEMORY, "out of host memory");
    atomic_init(&job->pending, 0);
    if (pthread_mutex_init(&job->mu, NULL) != 0) {
        free(job);
        return ctx_fail(ctx, FT_ERR_INTERNAL, "cannot create a mutex");
    }
    if (pthread_cond_init(&job->cv, NULL) != 0) {
        pthread_mutex_destroy(&job->mu);
        free(job);
        return ctx_fail(ctx, FT_ERR_INTERNAL, "cannot create a condition variable");
    }
    ctx->job = job;
    return FT_OK;
}

/* Copies the request into the job (the caller may reuse its arrays once ft_submit returns). */
static ft_status copy_request(ft_context *ctx, const ft_generate_params *gp) {
    ft_job *job = ctx->job;
    const sit_config *pc = &ctx_pred(ctx)->cfg;
    size_t n = (size_t)gp->num_images, state = (size_t)pc->in_channels * pc->input_size * pc->input_size;
    size_t n_labels = gp->class_weights ? 0 : n, n_seeds = gp->seeds ? n : 0;
    size_t n_weights = gp->class_weights ? n * pc->num_classes : 0, n_noise = gp->noise ? n * state : 0;
    size_t bytes = n_seeds * sizeof(uint64_t) + (n_weights + n_noise) * sizeof(float) + n_labels * sizeof(int);
    if (snprintf(job->sampler, sizeof job->sampler, "%s", gp->sampler) >= (int)sizeof job->sampler)
        return ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "sampler string is longer than %zu characters",
                        sizeof job->sampler - 1);
    if (job->buf_bytes < bytes) { /* grown when a request needs more, kept otherwise */
        void *buf = malloc(bytes);
        if (!buf) return ctx_fail(ctx, FT_ERR_OUT_OF_MEMORY, "out of host memory copying the request");
        free(job->buf);
        job->buf = buf;
        job->buf_bytes = bytes;
    }
    char *p = job->buf; /* 8-byte items first: every part stays aligned */
    job->gp = *gp;
    job->gp.sampler = job->sampler;
    if (n_seeds) job->gp.seeds = memcpy(p, gp->seeds, n_seeds * sizeof(uint64_t)), p += n_seeds * sizeof(uint64_t);
    if (n_weights)
        job->gp.class_weights = memcpy(p, gp->class_weights, n_weights * sizeof(float)), p += n_weights * sizeof(float);
    if (n_noise) job->gp.noise = memcpy(p, gp->noise, n_noise * sizeof(float)), p += n_noise * sizeof(float);
    job->gp.labels = n_labels ? memcpy(p, gp->labels, n_labels * sizeof(int)) : NULL;
    return FT_OK;
}

static ft_status submit_to_worker(ft_context *ctx, const ft_generate_params *gp, const ft_frame_target *target) {
    ft_job *job = ctx->job;
    ft_status st = copy_request(ctx, gp);
    if (st != FT_OK) return st;
    job->target = *target;
    if (!job->thread_started) {
        if (pthread_create(&job->thread, NULL, worker_main, ctx) != 0)
            return ctx_fail(ctx, FT_ERR_INTERNAL, "cannot start the context's worker thread");
        job->thread_started = 1;
    }
    pthread_mutex_lock(&job->mu);
    job->on_stream = 0;
    job->state = JOB_QUEUED;
    atomic_store(&job->pending, 1);
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);
    return FT_OK;
}

static ft_status submit_to_stream(ft_context *ctx, const ft_generate_params *gp, const ft_frame_target *target) {
    ft_job *job = ctx->job;
    ft_backend *be = ctx->be;
    ft_status st = FT_OK;
    if (!job->ev_join) st = be->event_create(be, &job->ev_join);
    if (st == FT_OK && !job->ev_done) st = be->event_create(be, &job->ev_done);
    if (st != FT_OK) return ctx_fail(ctx, st, "cannot create CUDA events: %s", be->error);
    ctx_outputs out = {NULL, NULL, target, 1, job->ev_join};
    ctx_enter(ctx);
    st = ctx_generate(ctx, gp, &out);
    if (st == FT_OK) st = be->event_record(be, job->ev_done, NULL);
    if (st == FT_OK) st = be->stream_wait_event(be, target->stream ? target->stream : FT_DEFAULT_STREAM, job->ev_done);
    ctx_leave(ctx);
    if (st != FT_OK) {
        if (!ctx->err.msg[0]) ctx_fail(ctx, st, "enqueueing the job failed: %s", be->error);
        return st;
    }
    job->on_stream = 1;
    atomic_store(&job->pending, 1);
    return FT_OK;
}

ft_status ft_submit(ft_context *ctx, const ft_generate_params *params, const ft_frame_target *target) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    ft_status st = ctx_busy(ctx);
    if (st != FT_OK) return st;
    ctx->err.msg[0] = 0;
    if (!target) return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_submit: target is NULL"));
    ctx_outputs out = {NULL, NULL, target, 0, NULL};
    st = ctx_check_request(ctx, params, &out);
    if (st == FT_OK) st = job_create(ctx);
    if (st == FT_OK) {
        int stream = target->memory == FT_MEMORY_DEVICE && !ctx->be->host_memory;
        st = stream ? submit_to_stream(ctx, params, target) : submit_to_worker(ctx, params, target);
    }
    return st == FT_OK ? FT_OK : ctx_failed(ctx, st);
}

ft_status ft_wait(ft_context *ctx) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    if (!ctx_job_running(ctx)) return FT_OK;
    ft_job *job = ctx->job;
    ft_status st;
    if (job->on_stream) {
        st = ctx->be->event_sync(ctx->be, job->ev_done);
        if (st == FT_OK && ctx->be->error[0]) st = FT_ERR_BACKEND;
        if (st != FT_OK) ctx_fail(ctx, st, "the submitted job failed on the %s backend: %s", ctx->be->name, ctx->be->error);
    } else {
        pthread_mutex_lock(&job->mu);
        while (job->state != JOB_DONE) pthread_cond_wait(&job->cv, &job->mu);
        job->state = JOB_IDLE;
        st = job->status;
        pthread_mutex_unlock(&job->mu);
    }
    atomic_store(&job->pending, 0);
    return st == FT_OK ? FT_OK : ctx_failed(ctx, st);
}

int ft_pending(ft_context *ctx) {
    if (!ctx || !ctx_job_running(ctx)) return 0;
    ft_job *job = ctx->job;
    if (job->on_stream) return ctx->be->event_query(ctx->be, job->ev_done) == 0;
    pthread_mutex_lock(&job->mu);
    int running = job->state != JOB_DONE;
    pthread_mutex_unlock(&job->mu);
    return running;
}

void ctx_job_free(ft_context *ctx) {
    ft_job *job = ctx->job;
    if (!job) return;
    ft_wait(ctx);
    if (job->thread_started) {
        pthread_mutex_lock(&job->mu);
        job->quit = 1;
        pthread_cond_broadcast(&job->cv);
        pthread_mutex_unlock(&job->mu);
        pthread_join(job->thread, NULL);
    }
    if (job->ev_join) ctx->be->event_destroy(ctx->be, job->ev_join);
    if (job->ev_done) ctx->be->event_destroy(ctx->be, job->ev_done);
    pthread_cond_destroy(&job->cv);
    pthread_mutex_destroy(&job->mu);
    free(job->buf);
    free(job);
    ctx->job = NULL;
}
