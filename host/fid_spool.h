/*
 * host/fid_spool.h — the crash-safe spool behind resumable FID sampling.
 *
 * A spool is a directory (default OUT.spool) holding
 *   state       text: format line, status (running|complete), count of
 *               committed images, then the run's configuration lines
 *               ("key: value"; lines starting with '#' are informative);
 *               replaced atomically (write, fsync, rename) after each batch
 *   images.raw  the committed images, uint8 HWC RGB, appended in global
 *               index order and fsync'd before the state records them
 *   lock        flock'ed while a process works on the spool
 * Bytes of images.raw beyond count (a batch cut short by a crash) are
 * truncated away when the spool is reopened. Opening with a different
 * configuration is refused with the differing keys named.
 */
#ifndef HOST_FID_SPOOL_H
#define HOST_FID_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

typedef struct {
    char dir[2048];
    char state_path[2100], images_path[2100], lock_path[2100];
    char *config;        /* malloc'd copy */
    uint64_t total;      /* images the run must produce */
    uint64_t count;      /* images committed */
    size_t image_bytes;
    int complete;
    int resumed;         /* the spool existed */
    int fd;              /* images.raw (-1 when complete) */
    int lock_fd;
    int busy;            /* fid_spool_open failed: another process holds the lock */
} fid_spool;

/* Creates or reopens (and locks) the spool in dir for the configuration. */
int fid_spool_open(fid_spool *s, const char *dir, const char *config, uint64_t total, size_t image_bytes,
                   hx_err *err);
/* Appends n images, fsyncs them, then records the new count. */
int fid_spool_append(fid_spool *s, const uint8_t *images, size_t n, hx_err *err);
/* Reads committed images [first, first + n). */
int fid_spool_read(fid_spool *s, uint64_t first, size_t n, uint8_t *buf, hx_err *err);
/* Records completion and deletes images.raw (the state stays, so a rerun
 * of the same command knows the work is done). */
int fid_spool_finish(fid_spool *s, hx_err *err);
void fid_spool_close(fid_spool *s);
/* Reads the committed count and status of the spool in dir without locking
 * it (progress of other processes); -1 when there is no readable state. */
int fid_spool_peek(const char *dir, uint64_t *count, int *complete);

/* "a: spool has 'x', this command has 'y'; ..." for differing config keys
 * (empty when equal). */
void fid_config_diff(const char *old_cfg, const char *new_cfg, char *msg, size_t cap);

#endif
