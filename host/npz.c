/* host/npz.c — the streaming .npz (stored zip) writer (see npz.h). */
#include "npz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "file_util.h"

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP64_END_SIG 0x06064b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP_DOS_DATE 0x0021u /* 1980-01-01, time 00:00:00: fixed for reproducible files */
#define U32_LIMIT 0xFFFFFFFFull

typedef struct {
    char file_name[NPZ_MAX_NAME + 8];
    uint64_t header_offset; /* of the local file header */
    uint64_t size;          /* .npy header + data */
    uint32_t crc;
    int zip64;              /* the local header carries a zip64 extra field */
} member;

struct npz_writer {
    FILE *f;
    char *path, *partial;
    int force_zip64;
    int n;
    member m[NPZ_MAX_MEMBERS];
    int open_member;        /* a member was begun and not ended */
    uint64_t data_left;     /* bytes the current member still expects */
    uint64_t offset;        /* bytes written so far */
    int failed;
};

/* ---- little-endian record building ---- */

typedef struct {
    uint8_t b[128];
    size_t n;
} rec;

static void put16(rec *r, unsigned v) {
    r->b[r->n++] = (uint8_t)(v & 0xff);
    r->b[r->n++] = (uint8_t)((v >> 8) & 0xff);
}

static void put32(rec *r, uint32_t v) {
    for (int i = 0; i < 4; i++) r->b[r->n++] = (uint8_t)((v >> (8 * i)) & 0xff);
}

static void put64(rec *r, uint64_t v) {
    for (int i = 0; i < 8; i++) r->b[r->n++] = (uint8_t)((v >> (8 * i)) & 0xff);
}

static void put_bytes(rec *r, const void *p, size_t n) {
    memcpy(r->b + r->n, p, n);
    r->n += n;
}

static int emit(npz_writer *w, const void *p, size_t n, hx_err *err) {
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = 1;
        return hx_fail(err, "%s: write error: %s", w->partial, strerror(errno));
    }
    w->offset += n;
    return 0;
}

int npz_writer_open(npz_writer **out, const char *path, int flags, hx_err *err) {
    *out = NULL;
    npz_writer *w = calloc(1, sizeof *w);
    if (!w) return hx_fail(err, "out of memory");
    size_t pl = strlen(path);
    w->path = strdup(path);
    w->partial = malloc(pl + 9);
    if (!w->path || !w->partial) {
        free(w->path);
        free(w->partial);
        free(w);
        return hx_fail(err, "out of memory");
    }
    snprintf(w->partial, pl + 9, "%s.partial", path);
    w->force_zip64 = (flags & NPZ_FORCE_ZIP64) != 0;
    w->f = fopen(w->partial, "wb");
    if (!w->f) {
        hx_fail(err, "%s: cannot create: %s", w->partial, strerror(errno));
        free(w->path);
        free(w->partial);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int npz_writer_begin(npz_writer *w, const char *name, npy_dtype dtype, int ndim, const int64_t *shape, hx_err *err) {
    if (w->failed) return hx_fail(err, "%s: an earlier write failed", w->partial);
    if (w->open_member) return hx_fail(err, "%s: member %s is still open", w->partial, w->m[w->n - 1].file_name);
    if (w->n >= NPZ_MAX_MEMBERS) return hx_fail(err, "%s: too many members", w->partial);
    if (!name[0] || strlen(name) >= NPZ_MAX_NAME || strchr(name, '/'))
        return hx_fail(err, "%s: bad member name '%s'", w->partial, name);
    char header[1024];
    size_t hl = npy_format_header(header, sizeof header, dtype, ndim, shape);
    if (!hl) return hx_fail(err, "%s: bad shape for member %s", w->partial, name);
    npy_header h;
    npy_parse_header((const uint8_t *)header, hl, &h, name, NULL);
    if (h.data_bytes > UINT64_MAX - hl) return hx_fail(err, "%s: member %s is too large", w->partial, name);
    member *m = &w->m[w->n];
    memset(m, 0, sizeof *m);
    snprintf(m->file_name, sizeof m->file_name, "%s.npy", name);
    m->header_offset = w->offset;
    m->size = hl + h.data_bytes;
    m->zip64 = w->force_zip64 || m->size >= U32_LIMIT;
    size_t name_len = strlen(m->file_name);
    rec r = {{0}, 0};
    put32(&r, ZIP_LOCAL_SIG);
    put16(&r, m->zip64 ? 45 : 20); /* version needed: 4.5 for zip64, else 2.0 */
    put16(&r, 0);                   /* flags */
    put16(&r, 0);                   /* stored */
    put16(&r, 0);                   /* time */
    put16(&r, ZIP_DOS_DATE);
    put32(&r, 0); /* CRC-32, patched by npz_writer_end */
    put32(&r, m->zip64 ? (uint32_t)U32_LIMIT : (uint32_t)m->size);
    put32(&r, m->zip64 ? (uint32_t)U32_LIMIT : (uint32_t)m->size);
    put16(&r, (unsigned)name_len);
    put16(&r, m->zip64 ? 20 : 0);
    put_bytes(&r, m->file_name, name_len);
    if (m->zip64) {
        put16(&r, 0x0001);
        put16(&r, 16);
        put64(&r, m->size); /* uncompressed */
        put64(&r, m->size); /* compressed */
    }
    if (emit(w, r.b, r.n, err) != 0) return -1;
    w->n++;
    w->open_member = 1;
    m->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    w->data_left = h.data_bytes;
    m->crc = (uint32_t)crc32(m->crc, (const Bytef *)header, (uInt)hl);
    return emit(w, header, hl, err);
}

int npz_writer_data(npz_writer *w, const void *data, size_t bytes, hx_err *err) {
    if (w->failed) return hx_fail(err, "%s: an earlier write failed", w->partial);
    if (!w->open_member) return hx_fail(err, "%s: no member is open", w->partial);
    member *m = &w->m[w->n - 1];
    if (bytes > w->data_left)
        return hx_fail(err, "%s: member %s: %zu bytes more than its shape declares", w->partial, m->file_name,
                       (size_t)(bytes - w->data_left));
    const uint8_t *p = data;
    for (size_t done = 0; done < bytes;) {
        size_t chunk = bytes - done > (1u << 30) ? (1u << 30) : bytes - done;
        m->crc = (uint32_t)crc32(m->crc, p + done, (uInt)chunk);
        done += chunk;
    }
    w->data_left -= bytes;
    return emit(w, data, bytes, err);
}

int npz_writer_end(npz_writer *w, hx_err *err) {
    if (w->failed) return hx_fail(err, "%s: an earlier write failed", w->partial);
    if (!w->open_member) return hx_fail(err, "%s: no member is open", w->partial);
    member *m = &w->m[w->n - 1];
    if (w->data_left)
        return hx_fail(err, "%s: member %s is %llu bytes short of its shape", w->partial, m->file_name,
                       (unsigned long long)w->data_left);
    rec r = {{0}, 0};
    put32(&r, m->crc);
    if (fseeko(w->f, (off_t)(m->header_offset + 14), SEEK_SET) != 0 || fwrite(r.b, 1, 4, w->f) != 4 ||
        fseeko(w->f, 0, SEEK_END) != 0) {
        w->failed = 1;
        return hx_fail(err, "%s: cannot patch the CRC: %s", w->partial, strerror(errno));
    }
    w->open_member = 0;
    return 0;
}

int npz_writer_array(npz_writer *w, const char *name, npy_dtype dtype, int ndim, const int64_t *shape,
                     const void *data, hx_err *err) {
    if (npz_writer_begin(w, name, dtype, ndim, shape, err) != 0) return -1;
    if (npz_writer_data(w, data, (size_t)w->data_left, err) != 0) return -1;
    return npz_writer_end(w, err);
}

int npz_writer_close(npz_writer *w, hx_err *err) {
    int rc = -1;
    if (w->failed) {
        hx_fail(err, "%s: an earlier write failed", w->partial);
        goto out;
    }
    if (w->open_member) {
        hx_fail(err, "%s: member %s was not ended", w->partial, w->m[w->n - 1].file_name);
        goto out;
    }
    uint64_t cd_offset = w->offset;
    for (int i = 0; i < w->n; i++) {
        member *m = &w->m[i];
        int z64 = w->force_zip64 || m->size >= U32_LIMIT || m->header_offset >= U32_LIMIT;
        size_t name_len = strlen(m->file_name);
        rec r = {{0}, 0};
        put32(&r, ZIP_CENTRAL_SIG);
        put16(&r, z64 ? 45 : 20); /* made by: MS-DOS attributes, spec version */
        put16(&r, z64 ? 45 : 20); /* needed */
        put16(&r, 0);
        put16(&r, 0);
        put16(&r, 0);
        put16(&r, ZIP_DOS_DATE);
        put32(&r, m->crc);
        put32(&r, z64 ? (uint32_t)U32_LIMIT : (uint32_t)m->size);
        put32(&r, z64 ? (uint32_t)U32_LIMIT : (uint32_t)m->size);
        put16(&r, (unsigned)name_len);
        put16(&r, z64 ? 28 : 0);
        put16(&r, 0); /* comment */
        put16(&r, 0); /* disk */
        put16(&r, 0); /* internal attributes */
        put32(&r, 0); /* external attributes */
        put32(&r, z64 ? (uint32_t)U32_LIMIT : (uint32_t)m->header_offset);
        put_bytes(&r, m->file_name, name_len);
        if (z64) {
            put16(&r, 0x0001);
            put16(&r, 24);
            put64(&r, m->size);
            put64(&r, m->size);
            put64(&r, m->header_offset);
        }
        if (emit(w, r.b, r.n, err) != 0) goto out;
    }
    uint64_t cd_size = w->offset - cd_offset;
    int z64_end = w->force_zip64 || cd_offset >= U32_LIMIT || cd_size >= U32_LIMIT || w->n >= 0xFFFF;
    rec r = {{0}, 0};
    if (z64_end) {
        uint64_t end64 = w->offset;
        put32(&r, ZIP64_END_SIG);
        put64(&r, 44); /* size of the rest of this record */
        put16(&r, 45);
        put16(&r, 45);
        put32(&r, 0);
        put32(&r, 0);
        put64(&r, (uint64_t)w->n);
        put64(&r, (uint64_t)w->n);
        put64(&r, cd_size);
        put64(&r, cd_offset);
        put32(&r, ZIP64_LOCATOR_SIG);
        put32(&r, 0);
        put64(&r, end64);
        put32(&r, 1);
    }
    put32(&r, ZIP_END_SIG);
    put16(&r, 0);
    put16(&r, 0);
    put16(&r, z64_end ? 0xFFFF : (unsigned)w->n);
    put16(&r, z64_end ? 0xFFFF : (unsigned)w->n);
    put32(&r, z64_end ? (uint32_t)U32_LIMIT : (uint32_t)cd_size);
    put32(&r, z64_end ? (uint32_t)U32_LIMIT : (uint32_t)cd_offset);
    put16(&r, 0);
    if (emit(w, r.b, r.n, err) != 0) goto out;
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) {
        hx_fail(err, "%s: cannot flush: %s", w->partial, strerror(errno));
        goto out;
    }
    int cr = fclose(w->f);
    w->f = NULL;
    if (cr != 0) {
        hx_fail(err, "%s: write error: %s", w->partial, strerror(errno));
        goto out;
    }
    if (rename(w->partial, w->path) != 0) {
        hx_fail(err, "cannot rename %s to %s: %s", w->partial, w->path, strerror(errno));
        goto out;
    }
    fsync_parent_dir(w->path);
    rc = 0;
out:
    if (rc != 0) {
        if (w->f) fclose(w->f);
        remove(w->partial);
    }
    free(w->path);
    free(w->partial);
    free(w);
    return rc;
}

void npz_writer_abort(npz_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    remove(w->partial);
    free(w->path);
    free(w->partial);
    free(w);
}
