/*
 * host/fid_shards.h — the shared spool directory of a multi-process
 * sample-fid run (mpirun, srun, torchrun-style launchers), and the merge of
 * its shards into the archive an unsharded run writes, byte for byte.
 *
 *   OUT.spool/
 *     world          "flowturbo-fid-shards 1" and the number of processes
 *     merge.lock     flock'ed (exclusive) while a process opens its shard's
 *                    spool, checks whether every shard is done, or merges
 *     shard-I-of-N/  shard I's spool (fid_spool.h); its state is the shard's
 *                    marker: count = the shard's images when done, status
 *                    complete once the archive is written
 *
 * Every process commits its last batch and closes its spool before it
 * takes the lock to check the others, and a process only locks its spool
 * while holding merge.lock; so whoever checks last sees every shard done
 * and merges, and a shard whose spool lock is held is being sampled by a
 * process that will check after it. The directory must be on a file system
 * every process sees, with working flock (NFS, Lustre mounted with -o flock,
 * GPFS, a local disk).
 */
#ifndef HOST_FID_SHARDS_H
#define HOST_FID_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"
#include "fid_npz.h"
#include "fid_spool.h"

/* The spool configuration of shard i (fid_spool_open's config). */
typedef int (*fid_shard_config)(void *user, int shard, char *cfg, size_t cap);

typedef struct {
    const char *root;        /* the spool directory (default OUT.spool) */
    const char *out;         /* the archive */
    int n;                   /* processes = shards */
    uint64_t num;            /* images over all shards */
    int image_size;          /* S: images are S x S x 3 */
    fid_label_source labels; /* the archive's labels (fid_npz.h), called with labels_user */
    void *labels_user;
    fid_shard_config config;
    void *config_user;
    int lock_fd;             /* merge.lock while held, else -1 */
} fid_shards;

typedef enum { FID_SHARDS_PENDING, FID_SHARDS_MERGED, FID_SHARDS_ALREADY_MERGED } fid_merge_result;

/* Images [first, end) of shard i of n over num images. */
void fid_shard_range(uint64_t num, int64_t i, int64_t n, uint64_t *first, uint64_t *end);
/* Refuses (-1, message) a spool directory that holds a multi-process run,
 * for a single-process run. */
int fid_shards_refuse_single(const char *root, hx_err *err);
/* Checks that root is this run's (the same number of processes, no
 * single-process spool, no archive from elsewhere), creating it when new,
 * and opens shard i's spool: all under merge.lock. */
int fid_shards_open(fid_shards *r, int i, fid_spool *sp, hx_err *err);
/* Images committed over all shards: own_count for shard own, the others'
 * states read without locks (progress). */
uint64_t fid_shards_count(const fid_shards *r, int own, uint64_t own_count);
/* Under merge.lock: when every shard is done, writes the archive from the
 * spools and marks them complete (MERGED); when that happened before,
 * ALREADY_MERGED; else PENDING with the unfinished shards in pending. */
int fid_shards_merge(fid_shards *r, fid_merge_result *res, char *pending, size_t cap, hx_err *err);

#endif
