/*
 * host/fid_ranks.h — the end of a multi-process sample-fid: the shards are
 * merged into OUT (fid_shards.h). Under MPI every rank's status reaches
 * every rank (rank 0 showing the progress of all shards meanwhile) and
 * rank 0 merges when all succeeded; without MPI each process checks after
 * its shard is done, and the last one to finish merges.
 */
#ifndef HOST_FID_RANKS_H
#define HOST_FID_RANKS_H

#include <stdint.h>

#include "fid_progress.h"
#include "fid_shards.h"
#include "fid_world.h"

/* status: this process's outcome so far (0, 1, 130); sh: NULL when the
 * process failed before its spool was open; progress: rank 0's line (may be
 * NULL); own_count: images of this process's shard. Sets *write_labels when
 * this process should write --labels-out (it merged, or the run was merged
 * before and it is rank 0). Returns the process's exit status. */
int fid_ranks_finish(fid_shards *sh, const fid_world *w, int status, fid_progress *progress, uint64_t own_count,
                     const char *me, int *write_labels);

#endif
