/* host/npz_read.c — reader for stored (uncompressed) .npz archives (see npz.h). */
#include "npz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <zlib.h>

#define U32_LIMIT 0xFFFFFFFFull

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int read_at(FILE *f, uint64_t off, void *buf, size_t n) {
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) return -1;
    return fread(buf, 1, n, f) == n ? 0 : -1;
}

/* Finds the end-of-central-directory record; fills the directory location. */
static int find_directory(npz_reader *r, uint64_t size, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count,
                          hx_err *err) {
    size_t tail = size < 65535 + 22 ? (size_t)size : 65535 + 22;
    uint8_t *buf = malloc(tail);
    if (!buf) return hx_fail(err, "out of memory");
    if (read_at(r->f, size - tail, buf, tail) != 0) {
        free(buf);
        return hx_fail(err, "%s: read error", r->path);
    }
    long pos = -1;
    for (long i = (long)tail - 22; i >= 0; i--)
        if (rd32(buf + i) == 0x06054b50u && (uint64_t)i + 22 + rd16(buf + i + 20) == tail) {
            pos = i;
            break;
        }
    if (pos < 0) {
        free(buf);
        return hx_fail(err, "%s: not a zip/npz file (no end-of-central-directory record)", r->path);
    }
    const uint8_t *e = buf + pos;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0) {
        free(buf);
        return hx_fail(err, "%s: multi-disk zip files are not supported", r->path);
    }
    *count = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    uint64_t eocd = size - tail + (uint64_t)pos;
    free(buf);
    uint8_t loc[20];
    if (eocd >= 20 && read_at(r->f, eocd - 20, loc, 20) == 0 && rd32(loc) == 0x07064b50u) {
        uint64_t z64_off = rd64(loc + 8);
        uint8_t z[56];
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return hx_fail(err, "%s: multi-disk zip files are not supported", r->path);
        if (eocd < 76 || z64_off > eocd - 76 || read_at(r->f, z64_off, z, 56) != 0 || rd32(z) != 0x06064b50u)
            return hx_fail(err, "%s: broken zip64 end-of-directory record", r->path);
        *count = rd64(z + 32);
        *cd_size = rd64(z + 40);
        *cd_off = rd64(z + 48);
        r->zip64 = 1;
    }
    if (*cd_off > size || *cd_size > size - *cd_off)
        return hx_fail(err, "%s: central directory lies outside the file", r->path);
    return 0;
}

int npz_reader_open(npz_reader *r, const char *path, hx_err *err) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->f = fopen(path, "rb");
    if (!r->f) return hx_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    uint8_t *cd = NULL;
    if (fstat(fileno(r->f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        hx_fail(err, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size, cd_off = 0, cd_size = 0, count = 0;
    if (size < 22) {
        hx_fail(err, "%s: not a zip/npz file (%llu bytes)", path, (unsigned long long)size);
        goto fail;
    }
    if (find_directory(r, size, &cd_off, &cd_size, &count, err) != 0) goto fail;
    if (count > NPZ_MAX_MEMBERS) {
        hx_fail(err, "%s: %llu members (at most %d are supported)", path, (unsigned long long)count, NPZ_MAX_MEMBERS);
        goto fail;
    }
    if (cd_size > (1u << 20)) {
        hx_fail(err, "%s: implausible central directory size %llu", path, (unsigned long long)cd_size);
        goto fail;
    }
    cd = malloc((size_t)cd_size + 1);
    if (!cd || read_at(r->f, cd_off, cd, (size_t)cd_size) != 0) {
        hx_fail(err, "%s: cannot read the central directory", path);
        goto fail;
    }
    size_t p = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (p + 46 > cd_size || rd32(cd + p) != 0x02014b50u) {
            hx_fail(err, "%s: broken central directory entry %llu", path, (unsigned long long)i);
            goto fail;
        }
        const uint8_t *c = cd + p;
        unsigned flags = rd16(c + 8), method = rd16(c + 10);
        uint32_t crc = rd32(c + 16);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), off = rd32(c + 42);
        size_t nl = rd16(c + 28), xl = rd16(c + 30), kl = rd16(c + 32);
        if (p + 46 + nl + xl + kl > cd_size) {
            hx_fail(err, "%s: central directory entry %llu overruns the directory", path, (unsigned long long)i);
            goto fail;
        }
        char name[NPZ_MAX_NAME + 8];
        if (nl >= sizeof name) {
            hx_fail(err, "%s: member name too long", path);
            goto fail;
        }
        memcpy(name, c + 46, nl);
        name[nl] = 0;
        /* zip64 extra field: the 0xFFFFFFFF fields, in order usize, csize, offset */
        const uint8_t *x = c + 46 + nl;
        for (size_t q = 0; q + 4 <= xl;) {
            unsigned id = rd16(x + q), len = rd16(x + q + 2);
            if (q + 4 + len > xl) break;
            if (id == 0x0001) {
                const uint8_t *z = x + q + 4;
                unsigned left = len;
                if (usize == U32_LIMIT && left >= 8) { usize = rd64(z); z += 8; left -= 8; }
                if (csize == U32_LIMIT && left >= 8) { csize = rd64(z); z += 8; left -= 8; }
                if (off == U32_LIMIT && left >= 8) { off = rd64(z); }
            }
            q += 4 + len;
        }
        p += 46 + nl + xl + kl;
        if (flags & 1) {
            hx_fail(err, "%s: member %s is encrypted", path, name);
            goto fail;
        }
        if (method != 0) {
            hx_fail(err, "%s: member %s is compressed (method %u); only stored npz files (np.savez, not "
                    "np.savez_compressed) are supported", path, name, method);
            goto fail;
        }
        if (csize != usize) {
            hx_fail(err, "%s: member %s: stored sizes differ", path, name);
            goto fail;
        }
        if (nl < 5 || strcmp(name + nl - 4, ".npy") != 0) {
            hx_fail(err, "%s: member %s is not a .npy array", path, name);
            goto fail;
        }
        uint8_t lh[30];
        if (off > size || read_at(r->f, off, lh, 30) != 0 || rd32(lh) != 0x04034b50u) {
            hx_fail(err, "%s: member %s: bad local header", path, name);
            goto fail;
        }
        if (rd16(lh + 26) != nl) {
            hx_fail(err, "%s: member %s: local and central names differ", path, name);
            goto fail;
        }
        npz_member *m = &r->m[r->n];
        snprintf(m->name, sizeof m->name, "%.*s", (int)(nl - 4), name);
        m->crc = crc;
        m->member_offset = off + 30 + nl + rd16(lh + 28);
        if (m->member_offset > size || usize > size - m->member_offset) {
            hx_fail(err, "%s: member %s extends past the end of the file", path, name);
            goto fail;
        }
        if (fseeko(r->f, (off_t)m->member_offset, SEEK_SET) != 0 || npy_read_header(r->f, &m->h, name, err) != 0)
            goto fail;
        if (m->h.data_bytes > usize || m->h.header_bytes != usize - m->h.data_bytes) { /* no wrap-around */
            hx_fail(err, "%s: member %s: the .npy header and shape need %llu + %llu bytes, the member has %llu", path,
                    name, (unsigned long long)m->h.header_bytes, (unsigned long long)m->h.data_bytes,
                    (unsigned long long)usize);
            goto fail;
        }
        m->data_offset = m->member_offset + m->h.header_bytes;
        r->n++;
    }
    free(cd);
    return 0;
fail:
    free(cd);
    npz_reader_close(r);
    return -1;
}

void npz_reader_close(npz_reader *r) {
    if (r->f) fclose(r->f);
    r->f = NULL;
}

const npz_member *npz_reader_find(const npz_reader *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->m[i].name, name) == 0) return &r->m[i];
    return NULL;
}

int npz_reader_read(npz_reader *r, const npz_member *m, uint64_t offset, void *buf, size_t n, hx_err *err) {
    if (offset > m->h.data_bytes || n > m->h.data_bytes - offset)
        return hx_fail(err, "%s: read past the end of member %s", r->path, m->name);
    if (n && read_at(r->f, m->data_offset + offset, buf, n) != 0)
        return hx_fail(err, "%s: read error in member %s", r->path, m->name);
    return 0;
}

int npz_reader_load(npz_reader *r, const char *name, npy_array *out, hx_err *err) {
    memset(out, 0, sizeof *out);
    const npz_member *m = npz_reader_find(r, name);
    if (!m) return hx_fail(err, "%s: no member '%s'", r->path, name);
    if (m->h.data_bytes > SIZE_MAX - 1) return hx_fail(err, "%s: member %s too large", r->path, name);
    out->h = m->h;
    out->data = malloc((size_t)m->h.data_bytes + 1);
    if (!out->data) return hx_fail(err, "out of memory");
    if (npz_reader_read(r, m, 0, out->data, (size_t)m->h.data_bytes, err) != 0) {
        npy_free(out);
        return -1;
    }
    return 0;
}

int npz_reader_check_crc(npz_reader *r, const npz_member *m, hx_err *err) {
    uint64_t total = m->h.header_bytes + m->h.data_bytes, done = 0;
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    uint8_t buf[1 << 16];
    if (fseeko(r->f, (off_t)m->member_offset, SEEK_SET) != 0) return hx_fail(err, "%s: seek error", r->path);
    while (done < total) {
        size_t n = total - done < sizeof buf ? (size_t)(total - done) : sizeof buf;
        if (fread(buf, 1, n, r->f) != n) return hx_fail(err, "%s: read error in member %s", r->path, m->name);
        crc = (uint32_t)crc32(crc, buf, (uInt)n);
        done += n;
    }
    if (crc != m->crc)
        return hx_fail(err, "%s: member %s: CRC-32 mismatch (stored %08x, computed %08x)", r->path, m->name, m->crc, crc);
    return 0;
}
