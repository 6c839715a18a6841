/*
 * host/fid_lanes.h — double-buffered FID batches: the GPU never waits for the
 * consumer (spool, npz writer) of the batch before.
 *
 * A lane is a context sharing the models of the caller's context (its own
 * backend: its own CUDA stream and plan), a thread that runs ft_generate on
 * it, and a host buffer from ft_host_alloc (pinned on CUDA) for one batch of
 * uint8 RGB images. On CUDA a batch is one graph launch (noise to uint8,
 * engine/plan.c) plus one device-to-host copy into that buffer.
 * fid_lanes_submit gives a batch to the next lane and returns at once;
 * fid_lanes_wait returns the oldest batch, so batches come back in the order
 * they were submitted. With two lanes, batch k+1 runs while the caller
 * consumes batch k; with one lane every batch runs alone (the reference the
 * double-buffered run must equal byte for byte, tests/test_cuda.c).
 *
 * Images depend only on (models, sampler, batch size, guidance, labels,
 * seeds): which lane made a batch changes no byte.
 */
#ifndef HOST_FID_LANES_H
#define HOST_FID_LANES_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/flowturbo.h"
#include "errmsg.h"

#define FID_MAX_LANES 2

typedef struct fid_lane fid_lane;

typedef struct {
    fid_lane *lane[FID_MAX_LANES];
    int n_lanes;
    int next;      /* lane of the next submit */
    int oldest;    /* lane of the oldest batch in flight */
    int in_flight; /* batches submitted and not yet returned by fid_lanes_wait */
    int max_batch;
    size_t image_bytes;
} fid_lanes;

/* n_lanes (1..FID_MAX_LANES) contexts sharing the models of `models`, made with params (NULL: defaults; backend,
 * device and dtype come from `models`), each with a buffer of max_batch images of image_bytes. 0 or -1. */
int fid_lanes_open(fid_lanes *l, const ft_context *models, const ft_context_params *params, int n_lanes,
                   int max_batch, size_t image_bytes, hx_err *err);
/* Starts a batch (gp->num_images <= max_batch; gp and its arrays are copied). -1 when every lane has a batch
 * in flight (call fid_lanes_wait first) or the request is too large. */
int fid_lanes_submit(fid_lanes *l, const ft_generate_params *gp, hx_err *err);
/* Waits for the oldest batch in flight: *images gets its images (valid until the next fid_lanes_submit to
 * that lane), *n their count. 0, or -1 with the engine's message (also when nothing is in flight). */
int fid_lanes_wait(fid_lanes *l, const uint8_t **images, int *n, hx_err *err);
/* Fills the request of batch k (its arrays stay valid until the next call); 0 to submit it, non-zero to submit
 * no more batches (those in flight are still taken). */
typedef int (*fid_make_fn)(void *user, int64_t k, ft_generate_params *gp);
/* Consumes batch k's n images; non-zero stops the run (fid_lanes_run returns it). */
typedef int (*fid_take_fn)(void *user, int64_t k, const uint8_t *images, int n);

/* Batches 0 .. n_batches - 1 in order, every lane kept busy, each taken in order while the next ones run.
 * 0, -1 with the reason in err (a submit or a batch failed), or take's non-zero value. */
int fid_lanes_run(fid_lanes *l, int64_t n_batches, fid_make_fn make, fid_take_fn take, void *user, hx_err *err);

/* Waits for what is in flight and frees everything. */
void fid_lanes_close(fid_lanes *l);

#endif
