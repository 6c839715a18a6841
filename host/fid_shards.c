/* host/fid_shards.c — see fid_shards.h. */
#include "fid_shards.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fid_npz.h"
#include "file_util.h"

#define WORLD_MAGIC "flowturbo-fid-shards 1"
#define CONFIG_MAX 8192

void fid_shard_range(uint64_t num, int64_t i, int64_t n, uint64_t *first, uint64_t *end) {
    *first = num * (uint64_t)i / (uint64_t)n;
    *end = num * (uint64_t)(i + 1) / (uint64_t)n;
}

static void root_path(const fid_shards *r, const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", r->root, name);
}

static void shard_dir(const fid_shards *r, int i, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/shard-%d-of-%d", r->root, i, r->n);
}

int fid_shards_refuse_single(const char *root, hx_err *err) {
    char world[2200];
    snprintf(world, sizeof world, "%s/world", root);
    if (!path_exists(world)) return 0;
    return hx_fail(err, "%s holds the spools of a multi-process run (%s): start the same command with the same "
                   "number of processes to resume it, or delete %s to start over", root, world, root);
}

static int lock_root(fid_shards *r, hx_err *err) {
    char path[2200];
    root_path(r, "merge.lock", path, sizeof path);
    r->lock_fd = open(path, O_RDWR | O_CREAT, 0644);
    if (r->lock_fd < 0) return hx_fail(err, "%s: cannot open: %s", path, strerror(errno));
    while (flock(r->lock_fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(r->lock_fd);
        r->lock_fd = -1;
        return hx_fail(err, "%s: cannot lock: %s (the spool directory needs a file system with working flock)", path,
                       strerror(e));
    }
    return 0;
}

static void unlock_root(fid_shards *r) {
    if (r->lock_fd >= 0) close(r->lock_fd); /* releases the flock */
    r->lock_fd = -1;
}

/* The world file: created by the first process, checked by the others. */
static int check_world(const fid_shards *r, hx_err *err) {
    char path[2200], state[2200], text[128];
    root_path(r, "state", state, sizeof state);
    if (path_exists(state))
        return hx_fail(err, "%s holds the spool of a single-process run: rerun it without a launcher (or with "
                       "--launcher none), or delete %s to start over", r->root, r->root);
    root_path(r, "world", path, sizeof path);
    int len = snprintf(text, sizeof text, "%s\nprocesses: %d\n", WORLD_MAGIC, r->n);
    if (!path_exists(path)) {
        if (path_exists(r->out))
            return hx_fail(err, "%s already exists and is not from this run's spool %s; remove it or choose another "
                           "--out", r->out, r->root);
        return write_file_atomic(path, text, (size_t)len, err);
    }
    char *old = read_text_file(path, 4096, err);
    if (!old) return -1;
    int processes = 0;
    int ok = strncmp(old, WORLD_MAGIC "\n", strlen(WORLD_MAGIC) + 1) == 0 &&
             sscanf(old + strlen(WORLD_MAGIC) + 1, "processes: %d", &processes) == 1;
    free(old);
    if (!ok) return hx_fail(err, "%s: not a flowturbo spool world file (delete %s to start over)", path, r->root);
    if (processes != r->n)
        return hx_fail(err, "%s holds the spools of a %d-process run but this run has %d processes: start it with %d "
                       "processes (any launcher) to resume, or delete %s to start over", r->root, processes, r->n,
                       processes, r->root);
    return 0;
}

/* Opens shard i's spool (creating it when new). */
static int open_shard(const fid_shards *r, int i, fid_spool *sp, hx_err *err) {
    char dir[2200], cfg[CONFIG_MAX];
    uint64_t first, end;
    memset(sp, 0, sizeof *sp);
    sp->fd = sp->lock_fd = -1;
    shard_dir(r, i, dir, sizeof dir);
    fid_shard_range(r->num, i, r->n, &first, &end);
    if (r->config(r->config_user, i, cfg, sizeof cfg) != 0) return hx_fail(err, "spool configuration too long");
    return fid_spool_open(sp, dir, cfg, end - first, (size_t)r->image_size * (size_t)r->image_size * 3, err);
}

int fid_shards_open(fid_shards *r, int i, fid_spool *sp, hx_err *err) {
    r->lock_fd = -1;
    if (mkdir(r->root, 0755) != 0 && errno != EEXIST)
        return hx_fail(err, "cannot create the spool directory %s: %s", r->root, strerror(errno));
    if (lock_root(r, err) != 0) return -1;
    int rc = check_world(r, err);
    if (rc == 0) rc = open_shard(r, i, sp, err);
    unlock_root(r);
    return rc;
}

uint64_t fid_shards_count(const fid_shards *r, int own, uint64_t own_count) {
    uint64_t total = own_count;
    for (int i = 0; i < r->n; i++) {
        char dir[2200];
        uint64_t count;
        int complete;
        shard_dir(r, i, dir, sizeof dir);
        if (i != own && fid_spool_peek(dir, &count, &complete) == 0) total += count;
    }
    return total;
}

typedef struct {
    const fid_shards *r;
    uint64_t *start; /* [n + 1]: first image of each shard */
    int open_part;
    fid_spool sp;
} merge_reader;

static int read_part(void *user, int part, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    merge_reader *m = user;
    if (m->open_part != part) {
        fid_spool_close(&m->sp);
        m->open_part = -1;
        if (open_shard(m->r, part, &m->sp, err) != 0) return -1;
        m->open_part = part;
    }
    return fid_spool_read(&m->sp, first, n, buf, err);
}

static int merged_images(void *user, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    merge_reader *m = user;
    return fid_concat_read(m->start, m->r->n, read_part, m, first, n, buf, (size_t)m->r->image_size * m->r->image_size * 3,
                           err);
}

static void add_pending(char *pending, size_t cap, int *n_listed, const char *fmt, int shard, uint64_t a, uint64_t b) {
    size_t used = strlen(pending);
    if (++*n_listed > 8 || used + 1 >= cap) return;
    snprintf(pending + used, cap - used, "%s", used ? ", " : "");
    used = strlen(pending);
    snprintf(pending + used, cap - used, fmt, shard, (unsigned long long)a, (unsigned long long)b);
}

enum { SHARD_ABSENT, SHARD_BUSY, SHARD_OPEN };

/* Opens shard i's spool when it exists and no process holds it; never
 * creates one. SHARD_OPEN, SHARD_BUSY, SHARD_ABSENT, or -1. */
static int open_existing(const fid_shards *r, int i, fid_spool *sp, hx_err *err) {
    char state[2300];
    shard_dir(r, i, state, sizeof state - 8);
    strcat(state, "/state");
    if (!path_exists(state)) return SHARD_ABSENT;
    if (open_shard(r, i, sp, err) == 0) return SHARD_OPEN;
    return sp->busy ? SHARD_BUSY : -1;
}

/* Looks at every shard's spool: counts the done (count = its images) and
 * the complete ones, and lists the others. */
static int survey(const fid_shards *r, int *n_done, int *n_complete, char *pending, size_t cap, hx_err *err) {
    int listed = 0;
    *n_done = *n_complete = 0;
    pending[0] = 0;
    for (int i = 0; i < r->n; i++) {
        fid_spool sp;
        int st = open_existing(r, i, &sp, err);
        if (st < 0) return -1;
        if (st == SHARD_ABSENT) add_pending(pending, cap, &listed, "shard %d (not started)", i, 0, 0);
        if (st == SHARD_BUSY) add_pending(pending, cap, &listed, "shard %d (running)", i, 0, 0);
        if (st != SHARD_OPEN) continue;
        if (sp.complete) ++*n_complete;
        else if (sp.count == sp.total) ++*n_done;
        else add_pending(pending, cap, &listed, "shard %d (stopped at %llu/%llu images: rerun its process)", i, sp.count,
                         sp.total);
        fid_spool_close(&sp);
    }
    if (listed > 8) {
        size_t used = strlen(pending);
        snprintf(pending + used, cap - used, " and %d more", listed - 8);
    }
    return 0;
}

/* Marks the done shards complete (the archive is in place); leaves any
 * absent, in use or unfinished (a shard sampled again after the merge). */
static int finish_shards(const fid_shards *r, hx_err *err) {
    for (int i = 0; i < r->n; i++) {
        fid_spool sp;
        int st = open_existing(r, i, &sp, err);
        if (st < 0) return -1;
        if (st != SHARD_OPEN) continue;
        int rc = sp.complete || sp.count < sp.total ? 0 : fid_spool_finish(&sp, err);
        fid_spool_close(&sp);
        if (rc != 0) return -1;
    }
    return 0;
}

static int merged_labels(void *user, uint64_t first, size_t n, int64_t *out, hx_err *err) {
    const fid_shards *r = ((merge_reader *)user)->r;
    return r->labels(r->labels_user, first, n, out, err);
}

int fid_shards_merge(fid_shards *r, fid_merge_result *res, char *pending, size_t cap, hx_err *err) {
    *res = FID_SHARDS_PENDING;
    if (lock_root(r, err) != 0) return -1;
    int n_done, n_complete, rc = survey(r, &n_done, &n_complete, pending, cap, err);
    if (rc == 0 && n_complete > 0) {
        /* shards are marked complete only once the archive is in place: a merge happened */
        if (!path_exists(r->out))
            rc = hx_fail(err, "%s says the run was merged into %s but %s is missing; delete %s to sample again",
                         r->root, r->out, r->out, r->root);
        else if ((rc = finish_shards(r, err)) == 0) *res = FID_SHARDS_ALREADY_MERGED;
    } else if (rc == 0 && n_done == r->n) {
        merge_reader m = {r, calloc((size_t)r->n + 1, sizeof(uint64_t)), -1, {.fd = -1, .lock_fd = -1}};
        if (!m.start) rc = hx_fail(err, "out of memory");
        for (int i = 0; rc == 0 && i <= r->n; i++) m.start[i] = r->num * (uint64_t)i / (uint64_t)r->n;
        if (rc == 0) rc = fid_write_npz(r->out, r->num, r->image_size, merged_images, r->labels ? merged_labels : NULL, &m, 0,
                                       err);
        fid_spool_close(&m.sp);
        free(m.start);
        if (rc == 0 && (rc = finish_shards(r, err)) == 0) *res = FID_SHARDS_MERGED;
    }
    unlock_root(r);
    return rc;
}
