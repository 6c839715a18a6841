/* host/serve_engine.c — `serve`: the engine workers (serve.h). Each worker
 * owns one context; it takes the queued API requests first (batching every
 * queued request with the same sampler and guidance into one model batch of
 * at most max_batch images, each image keeping its own seed), then makes one
 * frame for the next live stream whose previous frame has been sent (round
 * robin), so frames come as fast as the backend and the clients allow. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeg_encode.h"
#include "progress.h"
#include "serve.h"

int serve_progress(ft_phase phase, int step, int total, void *user) {
    serve_worker *w = user;
    if (phase == FT_PHASE_SAMPLING && step >= total) w->t_sampled = now_seconds();
    return 0;
}

/* ---- API requests ---- */

int serve_submit_and_wait(serve_state *s, serve_request *r) {
    pthread_mutex_lock(&s->mu);
    if (s->q_len >= s->opt.queue || s->quit) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    r->next = NULL;
    r->done = r->taken = 0;
    r->t_queued = now_seconds();
    if (s->q_tail) s->q_tail->next = r;
    else s->q_head = r;
    s->q_tail = r;
    s->q_len++;
    pthread_cond_broadcast(&s->work);
    /* a request a worker has taken is waited for even while stopping: the worker still writes into it */
    while (!r->done && !(s->quit && !r->taken)) pthread_cond_wait(&s->done, &s->mu);
    if (!r->done) { /* stopping: take it out of the queue */
        for (serve_request **pp = &s->q_head; *pp; pp = &(*pp)->next)
            if (*pp == r) {
                *pp = r->next;
                s->q_len--;
                break;
            }
        s->q_tail = NULL;
        for (serve_request *q = s->q_head; q; q = q->next) s->q_tail = q;
        r->status = FT_ERR_CANCELLED;
        snprintf(r->error, sizeof r->error, "the server is shutting down");
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Takes the head request and every queued one that can share its model batch (mutex held). */
static serve_request *take_batch(serve_state *s, int *images) {
    serve_request *head = s->q_head, *tail = head, **link = &head->next;
    *images = head->p.n;
    head->taken = 1;
    s->q_head = head->next;
    for (serve_request **pp = &s->q_head; *pp;) {
        serve_request *r = *pp;
        if (strcmp(r->p.sampler, head->p.sampler) == 0 && r->p.cfg_scale == head->p.cfg_scale &&
            *images + r->p.n <= s->opt.max_batch) {
            *pp = r->next;
            *link = r;
            link = &r->next;
            tail = r;
            r->taken = 1;
            *images += r->p.n;
        } else {
            pp = &r->next;
        }
    }
    tail->next = NULL;
    *link = NULL;
    s->q_tail = NULL;
    s->q_len = 0;
    for (serve_request *r = s->q_head; r; r = r->next) s->q_tail = r, s->q_len++;
    return head;
}

static void run_batch(serve_state *s, ft_context *ctx, serve_request *batch, int images) {
    int labels[SERVE_MAX_BATCH];
    uint64_t seeds[SERVE_MAX_BATCH];
    size_t img = (size_t)s->image_size * s->image_size * 3;
    uint8_t *rgb = malloc(img * (size_t)images);
    int n = 0, requests = 0;
    double t0 = now_seconds();
    for (serve_request *r = batch; r; r = r->next, requests++)
        for (int k = 0; k < r->p.n; k++, n++) {
            labels[n] = r->p.labels[k];
            seeds[n] = r->p.seed + (uint64_t)k;
        }
    ft_status st = FT_ERR_OUT_OF_MEMORY;
    if (rgb) {
        ft_generate_params gp;
        ft_generate_params_init(&gp);
        gp.num_images = images;
        gp.labels = labels;
        gp.seeds = seeds;
        gp.sampler = batch->p.sampler;
        gp.cfg_scale = batch->p.cfg_scale;
        gp.batch_size = images;
        st = ft_generate(ctx, &gp, NULL, rgb);
    }
    double t1 = now_seconds();
    n = 0;
    pthread_mutex_lock(&s->mu);
    s->batches++;
    if (requests > 1) s->batched_requests += (uint64_t)requests;
    for (serve_request *r = batch, *next; r; r = next) {
        next = r->next;
        r->status = st;
        r->t_started = t0;
        r->t_finished = t1;
        r->batch_requests = requests;
        r->batch_images = images;
        if (st == FT_OK) {
            r->rgb = malloc(img * (size_t)r->p.n);
            if (r->rgb) memcpy(r->rgb, rgb + img * (size_t)n, img * (size_t)r->p.n);
            else r->status = FT_ERR_OUT_OF_MEMORY, snprintf(r->error, sizeof r->error, "out of memory");
        } else {
            snprintf(r->error, sizeof r->error, "%s", rgb ? ft_last_error(ctx) : "out of memory");
        }
        n += r->p.n;
        if (r->status == FT_OK) s->requests_ok++;
        else s->requests_failed++;
        r->done = 1;
    }
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    free(rgb);
}

/* ---- streams ---- */

serve_stream *serve_stream_open(serve_state *s, const serve_stream *params) {
    size_t state = (size_t)s->latent_channels * s->latent_size * s->latent_size;
    serve_stream *st = malloc(sizeof *st);
    if (!st) return NULL;
    *st = *params;
    st->refs = 2;
    st->closed = st->busy = 0;
    st->frame_no = 0;
    st->event = NULL;
    st->event_len = st->event_sent = st->event_cap = 0;
    st->last_send_ms = 0;
    st->fps_t0 = now_seconds();
    st->fps_frames = 0;
    st->fps = 0;
    st->noise_segment = -1;
    st->noise_a = malloc(state * sizeof(float));
    st->noise_b = malloc(state * sizeof(float));
    pthread_mutex_lock(&s->mu);
    if (!st->noise_a || !st->noise_b || s->n_streams >= s->opt.max_streams || s->quit) {
        pthread_mutex_unlock(&s->mu);
        free(st->noise_a);
        free(st->noise_b);
        free(st);
        return NULL;
    }
    st->next = s->streams;
    s->streams = st;
    s->n_streams++;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    return st;
}

static void stream_release(serve_stream *st) { /* mutex held */
    if (--st->refs > 0) return;
    free(st->event);
    free(st->noise_a);
    free(st->noise_b);
    free(st);
}

void serve_stream_close(serve_state *s, serve_stream *st) {
    pthread_mutex_lock(&s->mu);
    st->closed = 1;
    stream_release(st);
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
}

/* Unlinks closed streams nobody works on; returns the next stream that wants a frame (mutex held). */
static serve_stream *next_stream(serve_state *s) {
    for (serve_stream **pp = &s->streams; *pp;) {
        serve_stream *st = *pp;
        if (st->closed && !st->busy) {
            *pp = st->next;
            s->n_streams--;
            stream_release(st);
        } else {
            pp = &st->next;
        }
    }
    int n = 0;
    for (serve_stream *st = s->streams; st; st = st->next) n++;
    for (int i = 0; i < n; i++) {
        int idx = (s->rr + i) % n, j = 0;
        serve_stream *st = s->streams;
        while (j++ < idx) st = st->next;
        if (!st->closed && !st->busy && st->event_len == 0) {
            s->rr = idx + 1;
            return st;
        }
    }
    return NULL;
}

typedef struct {
    float *noise, *weights;
    uint8_t *rgb;
} frame_buffers;

/* What frame f of a stream shows: classes a -> b at blend t, seeds a -> b (walk), or class a, seed a. */
typedef struct {
    int ca, cb;
    uint64_t sa, sb;
    float t;
} frame_plan;

static frame_plan plan_frame(const serve_state *s, const serve_stream *st) {
    frame_plan fp;
    int K = s->num_classes;
    if (!st->walk) {
        fp.ca = fp.cb = st->cls >= 0 ? st->cls : (int)(st->frame_no % (uint64_t)K);
        fp.sa = fp.sb = st->seed + st->frame_no;
        fp.t = 0.0f;
        return fp;
    }
    uint64_t seg = st->frame_no / (uint64_t)st->walk_frames;
    float u = (float)(st->frame_no % (uint64_t)st->walk_frames) / (float)st->walk_frames;
    fp.t = u * u * (3.0f - 2.0f * u); /* smoothstep: eases in and out of each seed */
    fp.sa = st->seed + seg;
    fp.sb = fp.sa + 1;
    fp.ca = st->cls >= 0 ? st->cls : (int)(seg % (uint64_t)K);
    fp.cb = st->cls >= 0 ? st->cls : (int)((seg + 1) % (uint64_t)K);
    return fp;
}

/* Makes, encodes and publishes one frame of st (called without the mutex; st->busy keeps it alive). */
static void stream_frame(serve_state *s, serve_worker *w, serve_stream *st, frame_buffers *fb) {
    ft_context *ctx = s->ctx[w->idx];
    frame_plan fp = plan_frame(s, st);
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 1;
    gp.sampler = st->sampler;
    gp.cfg_scale = st->cfg_scale;
    gp.seed = fp.sa;
    int label = fp.ca;
    gp.labels = &label;
    if (st->walk) {
        int64_t seg = (int64_t)(fp.sa - st->seed);
        if (st->noise_segment != seg) {
            ft_noise(st->noise_a, 1, s->latent_channels, s->latent_size, fp.sa);
            ft_noise(st->noise_b, 1, s->latent_channels, s->latent_size, fp.sb);
            st->noise_segment = seg;
        }
        size_t state = (size_t)s->latent_channels * s->latent_size * s->latent_size;
        ft_slerp(fb->noise, st->noise_a, st->noise_b, state, fp.t);
        memset(fb->weights, 0, (size_t)s->num_classes * sizeof(float));
        fb->weights[fp.ca] += 1.0f - fp.t;
        fb->weights[fp.cb] += fp.t;
        gp.noise = fb->noise;
        gp.class_weights = fb->weights;
        gp.labels = NULL;
    }
    double t0 = now_seconds();
    w->t_sampled = 0;
    ft_status stt = ft_generate(ctx, &gp, NULL, fb->rgb);
    double t1 = now_seconds();
    double sampled = w->t_sampled > 0 ? w->t_sampled : t1;
    uint8_t *jpg = NULL;
    size_t jpg_size = 0;
    hx_err err;
    int enc_ok = stt == FT_OK &&
                 jpeg_encode(fb->rgb, s->image_size, s->image_size, s->channels == 1, 92, &jpg, &jpg_size, &err) == 0;
    double t2 = now_seconds();
    sbuf b = {0};
    if (enc_ok) {
        sb_printf(&b, "event: frame\ndata: {\"seq\":%llu,\"class_a\":%d,\"class_b\":%d,\"t\":%.4f,\"seed_a\":%llu,"
                      "\"seed_b\":%llu,\"name_a\":",
                  (unsigned long long)st->frame_no, fp.ca, fp.cb, (double)fp.t, (unsigned long long)fp.sa,
                  (unsigned long long)fp.sb);
        sb_json_string(&b, s->class_names[fp.ca]);
        sb_printf(&b, ",\"name_b\":");
        sb_json_string(&b, s->class_names[fp.cb]);
        sb_printf(&b, ",\"sampler\":\"%s\",\"cfg_scale\":%g,\"walk\":%d,\"size\":%d,\"backend\":\"%s\","
                      "\"timing\":{\"sampling_ms\":%.2f,\"decode_ms\":%.2f,\"encode_ms\":%.2f,\"send_ms\":%.2f},"
                      "\"fps\":%.2f,\"jpeg\":\"",
                  st->sampler, (double)st->cfg_scale, st->walk, s->image_size, ft_backend_name(ctx),
                  (sampled - t0) * 1e3, (t1 - sampled) * 1e3, (t2 - t1) * 1e3, st->last_send_ms, st->fps);
        sb_base64(&b, jpg, jpg_size);
        sb_printf(&b, "\"}\n\n");
    } else {
        sb_printf(&b, "event: failure\ndata: {\"error\":");
        sb_json_string(&b, stt != FT_OK ? ft_last_error(ctx) : err.msg);
        sb_printf(&b, "}\n\n");
    }
    free(jpg);
    char *event = sb_take(&b);
    pthread_mutex_lock(&s->mu);
    st->busy = 0;
    if (event && !st->closed) {
        free(st->event);
        st->event_len = strlen(event);
        st->event = event;
        st->event_sent = 0;
        st->t_ready = now_seconds();
        st->frame_no++;
        st->fps_frames++;
        if (st->t_ready - st->fps_t0 >= 1.0) {
            st->fps = st->fps_frames / (st->t_ready - st->fps_t0);
            st->fps_t0 = st->t_ready;
            st->fps_frames = 0;
        }
        s->frames++;
        event = NULL;
    }
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    free(event);
}

static void *worker_main(void *arg) {
    serve_worker *w = arg;
    serve_state *s = w->s;
    size_t state = (size_t)s->latent_channels * s->latent_size * s->latent_size;
    frame_buffers fb = {malloc(state * sizeof(float)), malloc((size_t)s->num_classes * sizeof(float)),
                        malloc((size_t)s->image_size * s->image_size * 3)};
    int api_turn = 1;
    pthread_mutex_lock(&s->mu);
    while (fb.noise && fb.weights && fb.rgb) {
        serve_stream *st = NULL;
        while (!s->quit && !(st = next_stream(s)) && !s->q_head) pthread_cond_wait(&s->work, &s->mu);
        if (s->quit) break;
        if (s->q_head && (api_turn || !st)) { /* API requests and streams take turns */
            int images;
            serve_request *batch = take_batch(s, &images);
            api_turn = 0;
            pthread_mutex_unlock(&s->mu);
            run_batch(s, s->ctx[w->idx], batch, images);
        } else {
            api_turn = 1;
            st->busy = 1;
            pthread_mutex_unlock(&s->mu);
            stream_frame(s, w, st, &fb);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    free(fb.noise);
    free(fb.weights);
    free(fb.rgb);
    return NULL;
}

int serve_workers_start(serve_state *s) {
    for (int i = 0; i < s->opt.workers; i++) {
        if (pthread_create(&s->w[i].thread, NULL, worker_main, &s->w[i]) != 0) return -1;
        s->w[i].started = 1;
    }
    return 0;
}

void serve_workers_stop(serve_state *s) {
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->opt.workers; i++)
        if (s->w[i].started) pthread_join(s->w[i].thread, NULL);
    pthread_mutex_lock(&s->mu);
    while (s->streams) {
        serve_stream *st = s->streams;
        s->streams = st->next;
        stream_release(st);
    }
    s->n_streams = 0;
    pthread_mutex_unlock(&s->mu);
}
