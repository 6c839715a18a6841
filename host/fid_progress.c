/* host/fid_progress.c — see fid_progress.h. */
#include "fid_progress.h"

#include <stdio.h>
#include <string.h>

#define PEEK_INTERVAL 2.0 /* seconds between looks at the other shards (n small files on a shared disk) */

void fid_progress_start(fid_progress *p, int enabled, const fid_shards *shards, int own, uint64_t own_count,
                        uint64_t total) {
    memset(p, 0, sizeof *p);
    pbar_init(&p->bar, enabled);
    p->shards = shards;
    p->own = own;
    p->total = total;
    p->others = shards ? fid_shards_count(shards, own, 0) : 0;
    p->start = own_count + p->others;
    p->t0 = p->last_peek = now_seconds();
    pbar_mark(&p->bar, (int)p->start);
}

static void show(fid_progress *p, uint64_t own_count, int look) {
    if (!p->bar.enabled) return;
    if (p->shards && (look || now_seconds() - p->last_peek >= PEEK_INTERVAL)) {
        p->others = fid_shards_count(p->shards, p->own, 0);
        p->last_peek = now_seconds();
    }
    uint64_t done = own_count + p->others;
    char eta[64] = "", dur[32];
    if (done > p->start && done < p->total) {
        double per = (now_seconds() - p->t0) / (double)(done - p->start);
        snprintf(eta, sizeof eta, "ETA %s", format_duration(per * (double)(p->total - done), dur, sizeof dur));
    }
    pbar_update(&p->bar, "sampling", (int)done, (int)p->total, "img", eta);
}

void fid_progress_show(fid_progress *p, uint64_t own_count) { show(p, own_count, 0); }

void fid_progress_end(fid_progress *p, uint64_t own_count) {
    if (p->bar.active) show(p, own_count, 1);
    pbar_break(&p->bar);
}
