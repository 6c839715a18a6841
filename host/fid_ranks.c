/* host/fid_ranks.c — see fid_ranks.h. */
#include "fid_ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_options.h"
#include "fid_mpi.h"

typedef struct {
    fid_progress *progress;
    uint64_t own_count;
} wait_view;

/* The progress line while rank 0 waits for the other ranks. */
static void wait_tick(void *user) {
    wait_view *v = user;
    if (v->progress) fid_progress_show(v->progress, v->own_count);
}

/* Merges the shards when every one is done; 0 or 1. */
static int merge_shards(fid_shards *sh, const fid_world *w, const char *me, int *write_labels) {
    fid_merge_result res;
    char pending[1024];
    hx_err err;
    double t0 = now_seconds();
    if (fid_shards_merge(sh, &res, pending, sizeof pending, &err) != 0) return cli_error(me, "merging: %s", err.msg);
    if (res == FID_SHARDS_MERGED) {
        char what[300];
        snprintf(what, sizeof what, "merging %d shards into %s", sh->n, sh->out);
        print_timing(what, now_seconds() - t0);
        fprintf(stderr, "[INFO ] wrote %s: arr_0 uint8 [%llu, %d, %d, 3], labels int64 [%llu]\n", sh->out,
                (unsigned long long)sh->num, sh->image_size, sh->image_size, (unsigned long long)sh->num);
        *write_labels = 1;
    } else if (res == FID_SHARDS_ALREADY_MERGED && w->rank == 0) {
        fprintf(stderr, "[INFO ] %s is already complete (%llu images); nothing to do\n", sh->out,
                (unsigned long long)sh->num);
        *write_labels = 1;
    } else if (res == FID_SHARDS_PENDING) {
        if (w->mpi) return cli_error(me, "every rank reported success but not every shard is done: %s", pending);
        if (w->rank == 0)
            fprintf(stderr, "[INFO ] shard %d/%d is done (%llu/%llu images over all shards); the last process to "
                    "finish writes %s; still to finish: %s\n", w->rank, w->size,
                    (unsigned long long)fid_shards_count(sh, -1, 0), (unsigned long long)sh->num, sh->out, pending);
    }
    return 0;
}

/* Under MPI: every rank's status to every rank; rank 0 merges when all
 * succeeded and sends the outcome. */
static int finish_mpi(fid_shards *sh, const fid_world *w, int status, wait_view *view, const char *me,
                      int *write_labels) {
    hx_err err;
    int *all = calloc((size_t)w->size, sizeof(int));
    int final = 0;
    if (!all) return cli_error(me, "out of memory");
    if (fid_mpi_gather_status(status, all, wait_tick, view, &err) != 0) {
        free(all);
        return cli_error(me, "%s", err.msg);
    }
    if (w->rank == 0) {
        char failed[512] = "";
        int n_failed = 0;
        for (int r = 0; r < w->size; r++) {
            if (all[r] == 0) continue;
            size_t used = strlen(failed);
            if (++n_failed <= 16) snprintf(failed + used, sizeof failed - used, "%s%d", used ? ", " : "", r);
            final = final == 0 || final == all[r] ? all[r] : 1;
        }
        if (view->progress) fid_progress_end(view->progress, view->own_count);
        if (n_failed)
            cli_error(me, "%d rank%s did not finish (rank%s %s%s; see %s messages); every shard's spool is kept: run "
                      "the same command again to resume and merge", n_failed, n_failed == 1 ? "" : "s",
                      n_failed == 1 ? "" : "s", failed, n_failed > 16 ? ", ..." : "", n_failed == 1 ? "its" : "their");
        else final = sh ? merge_shards(sh, w, me, write_labels) : 1;
    }
    free(all);
    if (fid_mpi_bcast_int(&final, NULL, NULL, &err) != 0) return cli_error(me, "%s", err.msg);
    return status ? status : final;
}

int fid_ranks_finish(fid_shards *sh, const fid_world *w, int status, fid_progress *progress, uint64_t own_count,
                     const char *me, int *write_labels) {
    *write_labels = 0;
    wait_view view = {progress, own_count};
    if (w->mpi) return finish_mpi(sh, w, status, &view, me, write_labels);
    if (progress) pbar_break(&progress->bar);
    if (status != 0 || !sh) return status;
    return merge_shards(sh, w, me, write_labels);
}
