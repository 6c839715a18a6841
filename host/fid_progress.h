/*
 * host/fid_progress.h — sample-fid's images-done line,
 *   sampling |=========>          | 2456/50000 - 38.20img/s - ETA 20m45s
 * over a process's own shard, or, for rank 0 of a multi-process run, over
 * every shard (the others' counts read from their spool states every few
 * seconds), so the rate is the aggregate rate of all processes.
 */
#ifndef HOST_FID_PROGRESS_H
#define HOST_FID_PROGRESS_H

#include <stdint.h>

#include "fid_shards.h"
#include "progress.h"

typedef struct {
    progress_bar bar;
    const fid_shards *shards; /* NULL: count this process's shard only */
    int own;                  /* this process's shard */
    uint64_t total, start;    /* images the line counts to; images there at the start */
    double t0, last_peek;
    uint64_t others;          /* images of the other shards at the last look */
} fid_progress;

/* enabled 0: draws nothing. own_count: images of this process's shard already there. */
void fid_progress_start(fid_progress *p, int enabled, const fid_shards *shards, int own, uint64_t own_count,
                        uint64_t total);
void fid_progress_show(fid_progress *p, uint64_t own_count);
/* The final count of an unfinished line (every shard looked at now), then the line ends. */
void fid_progress_end(fid_progress *p, uint64_t own_count);

#endif
