/* host/npy.c — strict .npy reader and writer (see npy.h). */
#include "npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
#define NPY_MAX_DICT (1u << 20) /* far beyond any real header; stops absurd lengths */

size_t npy_dtype_size(npy_dtype dtype) {
    switch (dtype) {
    case NPY_F32: return 4;
    case NPY_I64: return 8;
    case NPY_U8: return 1;
    }
    return 0;
}

const char *npy_dtype_name(npy_dtype dtype) {
    switch (dtype) {
    case NPY_F32: return "float32";
    case NPY_I64: return "int64";
    case NPY_U8: return "uint8";
    }
    return "?";
}

static const char *descr_of(npy_dtype dtype) {
    switch (dtype) {
    case NPY_F32: return "<f4";
    case NPY_I64: return "<i8";
    case NPY_U8: return "|u1";
    }
    return "?";
}

/* numel and bytes with overflow checks; -1 on a negative dim or overflow. */
static int count_elements(npy_dtype dtype, int ndim, const int64_t *shape, uint64_t *numel, uint64_t *bytes) {
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && n > UINT64_MAX / d) return -1;
        n *= d;
    }
    uint64_t item = npy_dtype_size(dtype);
    if (n > UINT64_MAX / item) return -1;
    *numel = n;
    *bytes = n * item;
    return 0;
}

size_t npy_format_header(char *buf, size_t cap, npy_dtype dtype, int ndim, const int64_t *shape) {
    uint64_t numel, bytes;
    if (ndim < 0 || ndim > NPY_MAX_DIMS || count_elements(dtype, ndim, shape, &numel, &bytes) != 0) return 0;
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr_of(dtype));
    for (int i = 0; i < ndim; i++)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", ndim == 1 ? "," : "");
    if (len <= 0 || (size_t)len >= sizeof dict) return 0;
    /* version 1.0: 10-byte preamble; 2.0: 12 bytes. Pad with spaces and end with '\n'. */
    size_t pre = 10;
    size_t total = (pre + (size_t)len + 1 + 63) / 64 * 64;
    if (total - pre > 65535) {
        pre = 12;
        total = (pre + (size_t)len + 1 + 63) / 64 * 64;
    }
    if (total > cap) return 0;
    size_t dict_len = total - pre;
    memcpy(buf, MAGIC, 6);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    if (pre == 10) {
        buf[8] = (char)(dict_len & 0xff);
        buf[9] = (char)(dict_len >> 8);
    } else {
        for (int i = 0; i < 4; i++) buf[8 + i] = (char)((dict_len >> (8 * i)) & 0xff);
    }
    memcpy(buf + pre, dict, (size_t)len);
    memset(buf + pre + len, ' ', dict_len - (size_t)len - 1);
    buf[total - 1] = '\n';
    return total;
}

/* ---- header dict parser: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } ---- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

static int eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string ('...' or "..."), no escapes. */
static int parse_str(cursor *c, char *out, size_t cap) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int parse_int(cursor *c, int64_t *v) {
    skip_ws(c);
    const char *s = c->p;
    int64_t x = 0;
    int neg = 0;
    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
        c->p = s;
        return -1;
    }
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (x > (INT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 longs */
    *v = neg ? -x : x;
    return 0;
}

static int word(cursor *c, const char *w) {
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* Checks the magic and version; gives the preamble size and the dict length. */
static int parse_preamble(const uint8_t *buf, size_t avail, size_t *pre, size_t *dict_len, const char *name,
                          hx_err *err) {
    if (avail < 10) return hx_fail(err, "%s: too short to be a .npy file (%zu bytes)", name, avail);
    if (memcmp(buf, MAGIC, 6) != 0) return hx_fail(err, "%s: not a .npy file (bad magic)", name);
    int major = buf[6], minor = buf[7];
    if (major < 1 || major > 3 || minor != 0)
        return hx_fail(err, "%s: unsupported .npy format version %d.%d (expected 1.0, 2.0 or 3.0)", name, major, minor);
    *pre = major == 1 ? 10 : 12;
    if (avail < *pre) return hx_fail(err, "%s: truncated .npy header", name);
    *dict_len = major == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
                           : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    if (*dict_len == 0 || *dict_len > NPY_MAX_DICT)
        return hx_fail(err, "%s: implausible .npy header length %zu", name, *dict_len);
    return 0;
}

int npy_parse_header(const uint8_t *buf, size_t avail, npy_header *h, const char *name, hx_err *err) {
    memset(h, 0, sizeof *h);
    size_t pre, dict_len;
    if (parse_preamble(buf, avail, &pre, &dict_len, name, err) != 0) return -1;
    if (avail < pre + dict_len)
        return hx_fail(err, "%s: truncated .npy header (needs %zu bytes, has %zu)", name, pre + dict_len, avail);
    const char *d = (const char *)buf + pre;
    if (d[dict_len - 1] != '\n') return hx_fail(err, "%s: .npy header does not end with a newline", name);
    for (size_t i = 0; i < dict_len; i++)
        if ((unsigned char)d[i] < 0x20 && d[i] != '\n' && d[i] != '\t')
            return hx_fail(err, "%s: control character in the .npy header", name);
    cursor c = {d, d + dict_len - 1};
    int have_descr = 0, have_order = 0, have_shape = 0;
    char descr[32] = "";
    if (!eat(&c, '{')) return hx_fail(err, "%s: .npy header is not a dict (no '{')", name);
    for (;;) {
        if (eat(&c, '}')) break;
        char key[32];
        if (parse_str(&c, key, sizeof key) != 0 || !eat(&c, ':'))
            return hx_fail(err, "%s: malformed .npy header dict near '%.*s'", name,
                           (int)(c.end - c.p < 20 ? c.end - c.p : 20), c.p); /* the dict is not NUL-terminated */
        if (strcmp(key, "descr") == 0) {
            if (have_descr++) return hx_fail(err, "%s: .npy header has 'descr' twice", name);
            if (parse_str(&c, descr, sizeof descr) != 0)
                return hx_fail(err, "%s: .npy 'descr' is not a simple type string", name);
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_order++) return hx_fail(err, "%s: .npy header has 'fortran_order' twice", name);
            if (word(&c, "True")) return hx_fail(err, "%s: Fortran-order arrays are not supported (save C order)", name);
            if (!word(&c, "False")) return hx_fail(err, "%s: .npy 'fortran_order' must be True or False", name);
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++) return hx_fail(err, "%s: .npy header has 'shape' twice", name);
            if (!eat(&c, '(')) return hx_fail(err, "%s: .npy 'shape' is not a tuple", name);
            for (;;) {
                if (eat(&c, ')')) break;
                int64_t v;
                if (parse_int(&c, &v) != 0) return hx_fail(err, "%s: malformed .npy shape", name);
                if (v < 0) return hx_fail(err, "%s: negative dimension %lld in .npy shape", name, (long long)v);
                if (h->ndim >= NPY_MAX_DIMS)
                    return hx_fail(err, "%s: .npy array has more than %d dimensions", name, NPY_MAX_DIMS);
                h->shape[h->ndim++] = v;
                if (eat(&c, ')')) break;
                if (!eat(&c, ',')) return hx_fail(err, "%s: malformed .npy shape (expected ',' or ')')", name);
            }
        } else {
            return hx_fail(err, "%s: unexpected key '%s' in the .npy header", name, key);
        }
        if (eat(&c, '}')) break;
        if (!eat(&c, ',')) return hx_fail(err, "%s: malformed .npy header dict (expected ',' or '}')", name);
    }
    skip_ws(&c);
    if (c.p != c.end) return hx_fail(err, "%s: trailing characters after the .npy header dict", name);
    if (!have_descr || !have_order || !have_shape)
        return hx_fail(err, "%s: .npy header lacks '%s'", name,
                       !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    if (strcmp(descr, "<f4") == 0) h->dtype = NPY_F32;
    else if (strcmp(descr, "<i8") == 0) h->dtype = NPY_I64;
    else if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0 || strcmp(descr, "u1") == 0) h->dtype = NPY_U8;
    else if (descr[0] == '>')
        return hx_fail(err, "%s: big-endian data ('%s') is not supported; save little-endian", name, descr);
    else
        return hx_fail(err, "%s: dtype '%s' is not supported (expected float32 '<f4', int64 '<i8' or uint8 '|u1')",
                       name, descr);
    if (count_elements(h->dtype, h->ndim, h->shape, &h->numel, &h->data_bytes) != 0)
        return hx_fail(err, "%s: .npy shape is too large", name);
    h->header_bytes = pre + dict_len;
    return 0;
}

int npy_read_header(FILE *f, npy_header *h, const char *name, hx_err *err) {
    uint8_t pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got < 10) return hx_fail(err, "%s: too short to be a .npy file", name);
    size_t npre = 10;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) return hx_fail(err, "%s: truncated .npy header", name);
        npre = 12;
    }
    size_t dict_len;
    if (parse_preamble(pre, npre, &npre, &dict_len, name, err) != 0) return -1;
    uint8_t *buf = malloc(npre + dict_len);
    if (!buf) return hx_fail(err, "%s: out of memory", name);
    memcpy(buf, pre, npre);
    if (fread(buf + npre, 1, dict_len, f) != dict_len) {
        free(buf);
        return hx_fail(err, "%s: truncated .npy header", name);
    }
    int rc = npy_parse_header(buf, npre + dict_len, h, name, err);
    free(buf);
    return rc;
}

int npy_load(const char *path, npy_array *out, hx_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return hx_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return hx_fail(err, "%s: not a regular file", path);
    }
    if (npy_read_header(f, &out->h, path, err) != 0) {
        fclose(f);
        return -1;
    }
    uint64_t have = (uint64_t)sb.st_size - out->h.header_bytes;
    if (have < out->h.data_bytes) {
        fclose(f);
        return hx_fail(err, "%s: truncated: the shape needs %llu data bytes, the file has %llu", path,
                       (unsigned long long)out->h.data_bytes, (unsigned long long)have);
    }
    if (have > out->h.data_bytes) {
        fclose(f);
        return hx_fail(err, "%s: %llu unexpected bytes after the array data", path,
                       (unsigned long long)(have - out->h.data_bytes));
    }
    if (out->h.data_bytes > SIZE_MAX - 1) {
        fclose(f);
        return hx_fail(err, "%s: array too large for this machine", path);
    }
    out->data = malloc((size_t)out->h.data_bytes + 1);
    if (!out->data) {
        fclose(f);
        return hx_fail(err, "%s: out of memory for %llu bytes", path, (unsigned long long)out->h.data_bytes);
    }
    if (fread(out->data, 1, (size_t)out->h.data_bytes, f) != out->h.data_bytes) {
        fclose(f);
        npy_free(out);
        return hx_fail(err, "%s: read error", path);
    }
    fclose(f);
    return 0;
}

void npy_free(npy_array *a) {
    free(a->data);
    a->data = NULL;
}

int npy_save(const char *path, npy_dtype dtype, int ndim, const int64_t *shape, const void *data, hx_err *err) {
    char header[1024];
    size_t hl = npy_format_header(header, sizeof header, dtype, ndim, shape);
    if (!hl) return hx_fail(err, "%s: invalid array shape", path);
    npy_header h;
    npy_parse_header((const uint8_t *)header, hl, &h, path, NULL);
    FILE *f = fopen(path, "wb");
    if (!f) return hx_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(header, 1, hl, f) == hl;
    if (ok && h.data_bytes) ok = fwrite(data, 1, (size_t)h.data_bytes, f) == h.data_bytes;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        remove(path);
        return hx_fail(err, "%s: write error: %s", path, strerror(errno));
    }
    return 0;
}

const char *npy_shape_string(const npy_header *h, char *buf, size_t cap) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < h->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)h->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}
