/* host/file_util.c — see file_util.h. */
#include "file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The directory part of path ("." when there is none). */
static void parent_dir(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    while (slash && slash > path && slash[1] == 0) { /* "dir/" names dir itself */
        const char *prev = slash - 1;
        while (prev > path && *prev != '/') prev--;
        slash = *prev == '/' ? prev : NULL;
    }
    if (!slash) snprintf(dir, cap, ".");
    else if (slash == path) snprintf(dir, cap, "/");
    else snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

void fsync_parent_dir(const char *path) {
    char dir[4096];
    parent_dir(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int64_t file_size(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return -1;
    return (int64_t)sb.st_size;
}

int make_parent_dirs(const char *path, hx_err *err) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    if ((size_t)(slash - path) >= sizeof dir) return hx_fail(err, "%s: path too long", path);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    for (char *p = dir + 1;; p++) {
        char c = *p;
        if (c != '/' && c != 0) continue;
        *p = 0;
        struct stat sb;
        if (stat(dir, &sb) != 0 && mkdir(dir, 0777) != 0 && errno != EEXIST)
            return hx_fail(err, "%s: cannot create the directory %s: %s", path, dir, strerror(errno));
        if (c == 0) return 0;
        *p = c;
    }
}

const char *path_basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

char *read_text_file(const char *path, size_t max_bytes, hx_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hx_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max_bytes + 1);
    if (!buf) {
        fclose(f);
        hx_fail(err, "out of memory");
        return NULL;
    }
    size_t n = fread(buf, 1, max_bytes, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        free(buf);
        hx_fail(err, "%s: larger than %zu bytes", path, max_bytes);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

int write_file_atomic(const char *path, const void *data, size_t n, hx_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return hx_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    int ok = fwrite(data, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return hx_fail(err, "%s: cannot write: %s", path, strerror(e));
    }
    fsync_parent_dir(path);
    return 0;
}

int file_fingerprint(const char *path, uint64_t *fp, hx_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return hx_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return hx_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t size = (uint64_t)sb.st_size;
    for (int i = 0; i < 8; i++) {
        h ^= (size >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    unsigned char buf[65536];
    size_t total = 0, n;
    while (total < (1u << 20) && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < n; i++) {
            h ^= buf[i];
            h *= 0x100000001b3ull;
        }
        total += n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return hx_fail(err, "%s: read error", path);
    *fp = h;
    return 0;
}

int check_output_path(const char *what, const char *path, int flags, hx_err *err) {
    struct stat sb;
    int is_dir = flags & OUTPUT_PATH_DIR;
    if (stat(path, &sb) == 0) {
        if (!is_dir && S_ISDIR(sb.st_mode)) return hx_fail(err, "%s %s: is a directory, not a file name", what, path);
        if (is_dir && !S_ISDIR(sb.st_mode)) return hx_fail(err, "%s %s: exists and is not a directory", what, path);
        if (access(path, W_OK) != 0) return hx_fail(err, "%s %s: not writable: %s", what, path, strerror(errno));
        return 0;
    }
    char dir[4096];
    parent_dir(path, dir, sizeof dir);
    /* a writer that makes missing directories needs the nearest existing one to be writable */
    while ((flags & OUTPUT_PATH_MAKE_PARENTS) && stat(dir, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR) &&
           strcmp(dir, ".") && strcmp(dir, "/")) {
        char up[4096];
        parent_dir(dir, up, sizeof up);
        snprintf(dir, sizeof dir, "%s", up);
    }
    if (stat(dir, &sb) != 0) return hx_fail(err, "%s %s: directory %s does not exist", what, path, dir);
    if (!S_ISDIR(sb.st_mode)) return hx_fail(err, "%s %s: %s is not a directory", what, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return hx_fail(err, "%s %s: cannot create files in %s: %s", what, path, dir, strerror(errno));
    return 0;
}

uint64_t free_disk_bytes(const char *path, uint64_t *dev) {
    char dir[4096];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(dir, sizeof dir, "%s", path);
    else parent_dir(path, dir, sizeof dir);
    struct statvfs vs;
    if (stat(dir, &sb) != 0 || statvfs(dir, &vs) != 0) return UINT64_MAX;
    *dev = (uint64_t)sb.st_dev;
    return (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize;
}

uint64_t physical_memory_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

const char *format_bytes(uint64_t bytes, char *buf, size_t cap) {
    static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 6) v /= 1024.0, u++;
    if (u == 0) snprintf(buf, cap, "%llu bytes", (unsigned long long)bytes);
    else snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}
