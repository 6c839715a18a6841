/* host/fid_lanes.c — see fid_lanes.h. */
#include "fid_lanes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LANE_IDLE, LANE_QUEUED, LANE_DONE };

struct fid_lane {
    ft_context *ctx;
    uint8_t *images; /* ft_host_alloc: pinned on CUDA */
    pthread_t thread;
    int thread_started, quit, state;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* the copied request and its result */
    ft_generate_params gp;
    char sampler[64];
    int *labels;
    uint64_t *seeds;
    ft_status status;
    char error[1024];
};

static void *lane_main(void *arg) {
    fid_lane *ln = arg;
    pthread_mutex_lock(&ln->mu);
    for (;;) {
        while (!ln->quit && ln->state != LANE_QUEUED) pthread_cond_wait(&ln->cv, &ln->mu);
        if (ln->quit) break;
        pthread_mutex_unlock(&ln->mu);
        ft_status st = ft_generate(ln->ctx, &ln->gp, NULL, ln->images);
        pthread_mutex_lock(&ln->mu);
        ln->status = st;
        if (st != FT_OK) snprintf(ln->error, sizeof ln->error, "%s", ft_last_error(ln->ctx));
        ln->state = LANE_DONE;
        pthread_cond_broadcast(&ln->cv);
    }
    pthread_mutex_unlock(&ln->mu);
    return NULL;
}

static void lane_free(fid_lane *ln) {
    if (!ln) return;
    if (ln->thread_started) {
        pthread_mutex_lock(&ln->mu);
        ln->quit = 1;
        pthread_cond_broadcast(&ln->cv);
        pthread_mutex_unlock(&ln->mu);
        pthread_join(ln->thread, NULL); /* a running batch finishes first */
        pthread_cond_destroy(&ln->cv);
        pthread_mutex_destroy(&ln->mu);
    }
    ft_host_free(ln->ctx, ln->images);
    ft_context_free(ln->ctx);
    free(ln->labels);
    free(ln->seeds);
    free(ln);
}

static fid_lane *lane_new(const ft_context *models, const ft_context_params *params, int max_batch,
                          size_t image_bytes, hx_err *err) {
    fid_lane *ln = calloc(1, sizeof *ln);
    if (!ln) return hx_fail(err, "out of host memory"), NULL;
    ln->ctx = ft_context_new_shared(params, models);
    if (!ln->ctx) {
        free(ln);
        return hx_fail(err, "out of host memory"), NULL;
    }
    if (strcmp(ft_backend_name(ln->ctx), "none") == 0) {
        hx_fail(err, "a second context on the models: %s", ft_last_error(ln->ctx));
        lane_free(ln);
        return NULL;
    }
    ln->images = ft_host_alloc(ln->ctx, image_bytes * (size_t)max_batch);
    ln->labels = malloc(sizeof(int) * (size_t)max_batch);
    ln->seeds = malloc(sizeof(uint64_t) * (size_t)max_batch);
    if (!ln->images || !ln->labels || !ln->seeds) {
        hx_fail(err, "out of host memory for a batch of %d images (%zu bytes%s)", max_batch,
                image_bytes * (size_t)max_batch, strcmp(ft_backend_name(ln->ctx), "cuda") == 0 ? ", pinned" : "");
        lane_free(ln);
        return NULL;
    }
    if (pthread_mutex_init(&ln->mu, NULL) != 0 || pthread_cond_init(&ln->cv, NULL) != 0 ||
        pthread_create(&ln->thread, NULL, lane_main, ln) != 0) {
        hx_fail(err, "cannot start a lane thread");
        lane_free(ln); /* thread_started is 0: nothing to join */
        return NULL;
    }
    ln->thread_started = 1;
    return ln;
}

int fid_lanes_open(fid_lanes *l, const ft_context *models, const ft_context_params *params, int n_lanes,
                   int max_batch, size_t image_bytes, hx_err *err) {
    memset(l, 0, sizeof *l);
    if (n_lanes < 1 || n_lanes > FID_MAX_LANES) return hx_fail(err, "fid lanes: %d lanes (1..%d)", n_lanes, FID_MAX_LANES);
    if (max_batch < 1 || !image_bytes) return hx_fail(err, "fid lanes: empty batch");
    l->max_batch = max_batch;
    l->image_bytes = image_bytes;
    for (int i = 0; i < n_lanes; i++) {
        if (!(l->lane[i] = lane_new(models, params, max_batch, image_bytes, err))) {
            fid_lanes_close(l);
            return -1;
        }
        l->n_lanes = i + 1;
    }
    return 0;
}

int fid_lanes_submit(fid_lanes *l, const ft_generate_params *gp, hx_err *err) {
    if (l->in_flight >= l->n_lanes) return hx_fail(err, "fid lanes: every lane has a batch in flight");
    if (gp->num_images < 1 || gp->num_images > l->max_batch)
        return hx_fail(err, "fid lanes: a batch of %d images (1..%d)", gp->num_images, l->max_batch);
    if (gp->noise || gp->class_weights || !gp->labels || !gp->sampler)
        return hx_fail(err, "fid lanes: a batch needs labels and a sampler, and takes no noise or class weights");
    fid_lane *ln = l->lane[l->next];
    size_t n = (size_t)gp->num_images;
    pthread_mutex_lock(&ln->mu);
    ln->gp = *gp;
    snprintf(ln->sampler, sizeof ln->sampler, "%s", gp->sampler);
    ln->gp.sampler = ln->sampler;
    ln->gp.labels = memcpy(ln->labels, gp->labels, n * sizeof(int));
    if (gp->seeds) ln->gp.seeds = memcpy(ln->seeds, gp->seeds, n * sizeof(uint64_t));
    ln->error[0] = 0;
    ln->state = LANE_QUEUED;
    pthread_cond_broadcast(&ln->cv);
    pthread_mutex_unlock(&ln->mu);
    l->next = (l->next + 1) % l->n_lanes;
    l->in_flight++;
    return 0;
}

int fid_lanes_wait(fid_lanes *l, const uint8_t **images, int *n, hx_err *err) {
    if (!l->in_flight) return hx_fail(err, "fid lanes: no batch in flight");
    fid_lane *ln = l->lane[l->oldest];
    pthread_mutex_lock(&ln->mu);
    while (ln->state != LANE_DONE) pthread_cond_wait(&ln->cv, &ln->mu);
    ln->state = LANE_IDLE;
    ft_status st = ln->status;
    pthread_mutex_unlock(&ln->mu);
    l->oldest = (l->oldest + 1) % l->n_lanes;
    l->in_flight--;
    if (st != FT_OK) return hx_fail(err, "%s", ln->error);
    *images = ln->images;
    *n = ln->gp.num_images;
    return 0;
}

int fid_lanes_run(fid_lanes *l, int64_t n_batches, fid_make_fn make, fid_take_fn take, void *user, hx_err *err) {
    int64_t submitted = 0, taken = 0;
    int stop = 0, rc = 0;
    while (rc == 0) {
        while (!stop && l->in_flight < l->n_lanes && submitted < n_batches) {
            ft_generate_params gp;
            if (make(user, submitted, &gp) != 0) stop = 1;
            else if (fid_lanes_submit(l, &gp, err) != 0) rc = -1, stop = 1;
            else submitted++;
        }
        if (!l->in_flight) break;
        const uint8_t *images;
        int n;
        if (fid_lanes_wait(l, &images, &n, err) != 0) rc = -1;
        else rc = take(user, taken++, images, n);
        if (rc != 0) stop = 1;
    }
    return rc; /* batches still in flight after a failure are waited for by fid_lanes_close */
}

void fid_lanes_close(fid_lanes *l) {
    for (int i = 0; i < l->n_lanes; i++) lane_free(l->lane[i]);
    memset(l, 0, sizeof *l);
}
