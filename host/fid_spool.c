/* host/fid_spool.c — see fid_spool.h. */
#include "fid_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_util.h"

#define STATE_MAGIC "flowturbo-fid-spool 1"
#define STATE_MAX (256 * 1024)

static int write_state(fid_spool *s, hx_err *err) {
    size_t cap = strlen(s->config) + 256;
    char *buf = malloc(cap);
    if (!buf) return hx_fail(err, "out of memory");
    int n = snprintf(buf, cap, "%s\nstatus %s\ncount %llu\nconfig:\n%s", STATE_MAGIC,
                     s->complete ? "complete" : "running", (unsigned long long)s->count, s->config);
    int rc = write_file_atomic(s->state_path, buf, (size_t)n, err);
    free(buf);
    return rc;
}

/* Finds "key: value" in cfg; copies the value. */
static int config_value(const char *cfg, const char *key, size_t key_len, char *out, size_t cap) {
    for (const char *line = cfg; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (line[0] != '#' && len > key_len && strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
            const char *v = line + key_len + 1;
            while (*v == ' ') v++;
            snprintf(out, cap, "%.*s", (int)(len - (size_t)(v - line)), v);
            return 1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static void diff_one_way(const char *a, const char *b, int a_is_old, char *msg, size_t cap) {
    for (const char *line = a; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *colon = memchr(line, ':', len);
        if (line[0] != '#' && colon) {
            size_t kl = (size_t)(colon - line);
            char va[512], vb[512], key[128];
            snprintf(key, sizeof key, "%.*s", (int)kl, line);
            config_value(a, line, kl, va, sizeof va);
            int has_b = config_value(b, line, kl, vb, sizeof vb);
            size_t used = strlen(msg);
            if (!has_b || strcmp(va, vb) != 0) {
                if (has_b && !a_is_old) {
                    /* already reported from the old side */
                } else if (used + 1 < cap) {
                    const char *old_v = a_is_old ? va : "(none)", *new_v = a_is_old ? (has_b ? vb : "(none)") : va;
                    snprintf(msg + used, cap - used, "%s%s: spool has '%s', this command has '%s'", used ? "; " : "",
                             key, old_v, new_v);
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
}

void fid_config_diff(const char *old_cfg, const char *new_cfg, char *msg, size_t cap) {
    msg[0] = 0;
    diff_one_way(old_cfg, new_cfg, 1, msg, cap);
    diff_one_way(new_cfg, old_cfg, 0, msg, cap);
}

static int lock_spool(fid_spool *s, hx_err *err) {
    s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT, 0644);
    if (s->lock_fd < 0) return hx_fail(err, "%s: cannot open: %s", s->lock_path, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        s->busy = errno == EWOULDBLOCK;
        return hx_fail(err, "%s is in use by another flowturbo process (or its lock is held); wait for it or stop it",
                       s->dir);
    }
    return 0;
}

/* Reads the state file into s (count, complete) and returns its config part (malloc'd). */
static char *read_state(fid_spool *s, hx_err *err) {
    char *text = read_text_file(s->state_path, STATE_MAX, err);
    if (!text) return NULL;
    char status[32];
    unsigned long long count;
    int off = 0;
    if (strncmp(text, STATE_MAGIC "\n", strlen(STATE_MAGIC) + 1) != 0 ||
        sscanf(text + strlen(STATE_MAGIC) + 1, "status %31s\ncount %llu\nconfig:\n%n", status, &count, &off) != 2 ||
        off == 0 || (strcmp(status, "running") && strcmp(status, "complete"))) {
        hx_fail(err, "%s: not a flowturbo FID spool state file (delete %s to start over)", s->state_path, s->dir);
        free(text);
        return NULL;
    }
    s->count = count;
    s->complete = strcmp(status, "complete") == 0;
    char *cfg = strdup(text + strlen(STATE_MAGIC) + 1 + off);
    free(text);
    if (!cfg) hx_fail(err, "out of memory");
    return cfg;
}

static int set_paths(fid_spool *s, const char *dir, hx_err *err) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->lock_fd = -1;
    if (strlen(dir) >= sizeof s->dir - 16) return hx_fail(err, "spool path too long: %s", dir);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->state_path, sizeof s->state_path, "%s/state", dir);
    snprintf(s->images_path, sizeof s->images_path, "%s/images.raw", dir);
    snprintf(s->lock_path, sizeof s->lock_path, "%s/lock", dir);
    return 0;
}

int fid_spool_peek(const char *dir, uint64_t *count, int *complete) {
    fid_spool s;
    if (set_paths(&s, dir, NULL) != 0) return -1;
    char *cfg = read_state(&s, NULL);
    if (!cfg) return -1;
    free(cfg);
    *count = s.count;
    *complete = s.complete;
    return 0;
}

int fid_spool_open(fid_spool *s, const char *dir, const char *config, uint64_t total, size_t image_bytes,
                   hx_err *err) {
    if (set_paths(s, dir, err) != 0) return -1;
    s->total = total;
    s->image_bytes = image_bytes;
    s->config = strdup(config);
    if (!s->config) return hx_fail(err, "out of memory");
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (mkdir(dir, 0755) != 0) {
            hx_fail(err, "cannot create the spool directory %s: %s", dir, strerror(errno));
            goto fail;
        }
        fsync_parent_dir(dir);
    } else if (!S_ISDIR(sb.st_mode)) {
        hx_fail(err, "%s exists and is not a spool directory", dir);
        goto fail;
    }
    if (lock_spool(s, err) != 0) goto fail;
    if (path_exists(s->state_path)) {
        char *old = read_state(s, err);
        if (!old) goto fail;
        char diff[2048];
        fid_config_diff(old, config, diff, sizeof diff);
        free(old);
        if (diff[0]) {
            hx_fail(err, "%s belongs to a different run (%s); rerun with the original options to resume, or delete "
                    "%s (and the partial output) to start over", dir, diff, dir);
            goto fail;
        }
        if (s->count > total) {
            hx_fail(err, "%s: state records %llu images but the run has %llu", s->state_path,
                    (unsigned long long)s->count, (unsigned long long)total);
            goto fail;
        }
        s->resumed = 1;
        if (s->complete) return 0;
    } else {
        s->count = 0;
        s->complete = 0;
        /* a fresh state first: images.raw is only trusted up to the recorded count */
        if (write_state(s, err) != 0) goto fail;
    }
    s->fd = open(s->images_path, O_RDWR | O_CREAT, 0644);
    if (s->fd < 0) {
        hx_fail(err, "%s: cannot open: %s", s->images_path, strerror(errno));
        goto fail;
    }
    if (fstat(s->fd, &sb) != 0) {
        hx_fail(err, "%s: cannot stat: %s", s->images_path, strerror(errno));
        goto fail;
    }
    uint64_t want = s->count * (uint64_t)image_bytes;
    if ((uint64_t)sb.st_size < want) {
        hx_fail(err, "%s holds %llu bytes but the state records %llu images (%llu bytes): the spool is damaged; "
                "delete %s to start over", s->images_path, (unsigned long long)sb.st_size,
                (unsigned long long)s->count, (unsigned long long)want, dir);
        goto fail;
    }
    if ((uint64_t)sb.st_size > want && (ftruncate(s->fd, (off_t)want) != 0 || fsync(s->fd) != 0)) {
        hx_fail(err, "%s: cannot drop the unfinished batch: %s", s->images_path, strerror(errno));
        goto fail;
    }
    if (lseek(s->fd, (off_t)want, SEEK_SET) < 0) {
        hx_fail(err, "%s: seek error: %s", s->images_path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    fid_spool_close(s);
    return -1;
}

int fid_spool_append(fid_spool *s, const uint8_t *images, size_t n, hx_err *err) {
    if (s->fd < 0 || s->complete) return hx_fail(err, "%s: spool is not open for writing", s->dir);
    if (n > s->total - s->count) return hx_fail(err, "%s: more images than the run needs", s->dir);
    size_t bytes = n * s->image_bytes;
    for (size_t done = 0; done < bytes;) {
        ssize_t w = write(s->fd, images + done, bytes - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return hx_fail(err, "%s: write error: %s", s->images_path, strerror(errno));
        done += (size_t)w;
    }
    if (fsync(s->fd) != 0) return hx_fail(err, "%s: fsync failed: %s", s->images_path, strerror(errno));
    s->count += n;
    if (write_state(s, err) != 0) {
        s->count -= n;
        return -1;
    }
    return 0;
}

int fid_spool_read(fid_spool *s, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    if (s->fd < 0 || first > s->count || n > s->count - first)
        return hx_fail(err, "%s: images %llu..%llu are not in the spool", s->dir, (unsigned long long)first,
                       (unsigned long long)(first + n));
    size_t bytes = n * s->image_bytes;
    off_t off = (off_t)(first * s->image_bytes);
    for (size_t done = 0; done < bytes;) {
        ssize_t r = pread(s->fd, buf + done, bytes - done, off + (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return hx_fail(err, "%s: read error", s->images_path);
        done += (size_t)r;
    }
    return 0;
}

int fid_spool_finish(fid_spool *s, hx_err *err) {
    s->complete = 1;
    if (write_state(s, err) != 0) return -1;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    if (unlink(s->images_path) != 0 && errno != ENOENT)
        return hx_fail(err, "%s: cannot delete: %s", s->images_path, strerror(errno));
    fsync_parent_dir(s->images_path);
    return 0;
}

void fid_spool_close(fid_spool *s) {
    if (s->fd >= 0) close(s->fd);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    s->fd = -1;
    s->lock_fd = -1;
    free(s->config);
    s->config = NULL;
}
