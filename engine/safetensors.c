/* engine/safetensors.c — validating safetensors reader (see safetensors.h). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

static const struct {
    const char *name;
    st_dtype dtype;
    size_t size;
} DTYPES[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2},
    {"I32", ST_I32, 4}, {"I64", ST_I64, 8}, {"U8", ST_U8, 1},
};

const char *st_dtype_name(st_dtype dtype) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].dtype == dtype) return DTYPES[i].name;
    return "?";
}

size_t st_dtype_size(st_dtype dtype) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].dtype == dtype) return DTYPES[i].size;
    return 0;
}

static int dtype_from_name(const char *s, st_dtype *out) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, s) == 0) {
            *out = DTYPES[i].dtype;
            return 1;
        }
    return 0;
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { mant <<= 1; e++; } while (!(mant & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
        }
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void st_to_f32(const st_tensor *t, float *out) {
    switch (t->dtype) {
    case ST_F32: memcpy(out, t->data, t->numel * 4); break;
    case ST_F16:
    case ST_BF16:
        for (uint64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);
            out[i] = t->dtype == ST_F16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
        }
        break;
    default: memset(out, 0, t->numel * 4); break; /* callers check the dtype first */
    }
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

void st_close(st_file *f) {
    if (!f) return;
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->strings);
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* The header is read twice with the streaming JSON reader: pass 1 checks the
 * syntax and counts the entries and string bytes, pass 2 fills arrays of
 * exactly that size. Memory is proportional to what the header describes
 * (~70 bytes per tensor plus the names), never to its raw size times a tree
 * node. A safetensors header nests 3 deep: {name: {field: [dims]}}. */
#define ST_JSON_DEPTH 3

typedef struct {
    size_t entries, meta, string_bytes;
} header_counts;

static ft_status count_header(st_file *f, const char *text, size_t len, header_counts *c, ft_err *err) {
    json_reader r;
    json_reader_init(&r, text, len, ST_JSON_DEPTH);
    memset(c, 0, sizeof *c);
    int in_meta = 0;
    json_token t;
    while ((t = json_next(&r)) != JSON_END && t != JSON_ERROR) {
        if (t == JSON_KEY && r.depth == 1) {
            c->entries++;
            c->string_bytes += r.len + 1;
            in_meta = strcmp(r.str, "__metadata__") == 0;
        } else if (in_meta && r.depth == 2 && (t == JSON_KEY || t == JSON_STRING)) {
            c->meta += t == JSON_KEY;
            c->string_bytes += r.len + 1;
        }
    }
    ft_status st = FT_OK;
    if (t == JSON_ERROR) st = ft_fail(err, FT_ERR_FORMAT, "%s: header is not valid JSON: %s", f->path, r.error);
    json_reader_free(&r);
    return st;
}

/* Copies the current string token into the arena. */
static char *keep_string(const json_reader *r, char **arena) {
    char *s = *arena;
    memcpy(s, r->str, r->len + 1);
    *arena += r->len + 1;
    return s;
}

/* A JSON_ERROR from pass 2 cannot be a syntax error (pass 1 saw them all): a reader limit, then. */
static ft_status syntax_error(const st_file *f, const json_reader *r, ft_err *err) {
    return ft_fail(err, FT_ERR_FORMAT, "%s: header is not valid JSON: %s", f->path, r->error);
}

/* Reads one tensor entry (the reader is at its value); the fields may come in any order. */
static ft_status parse_entry(st_file *f, json_reader *r, const char *name, uint64_t data_len, st_tensor *t,
                             ft_err *err) {
    const char *path = f->path;
    if (json_next(r) != JSON_OBJECT_BEGIN)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    uint64_t numel = 1, off[2] = {0, 0};
    int overflow = 0;
    size_t rank = 0;
    json_token tok;
    while ((tok = json_next(r)) == JSON_KEY) {
        if (strcmp(r->str, "dtype") == 0 && !have_dtype++) {
            tok = json_next(r);
            if (tok != JSON_STRING || !dtype_from_name(r->str, &t->dtype))
                return ft_fail(err, FT_ERR_FORMAT,
                               "%s: tensor '%s': unknown dtype '%.40s' (supported: F32 F16 BF16 I32 I64 U8)", path,
                               name, tok == JSON_STRING ? r->str : "(not a string)");
        } else if (strcmp(r->str, "shape") == 0 && !have_shape++) {
            if (json_next(r) != JSON_ARRAY_BEGIN)
                return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': shape is not an array", path, name);
            while ((tok = json_next(r)) != JSON_ARRAY_END) {
                if (tok != JSON_NUMBER || !r->is_uint || r->uint > (uint64_t)INT64_MAX)
                    return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': dimension %zu is not a non-negative integer",
                                   path, name, rank);
                if (r->uint != 0 && numel > UINT64_MAX / r->uint) overflow = 1;
                else numel *= r->uint;
                if (rank < ST_MAX_DIMS) t->shape[rank] = (int64_t)r->uint;
                rank++;
            }
            if (rank < 1 || rank > ST_MAX_DIMS)
                return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': rank %zu outside 1..%d", path, name, rank,
                               ST_MAX_DIMS);
        } else if (strcmp(r->str, "data_offsets") == 0 && !have_offsets++) {
            int n = 0, ok = json_next(r) == JSON_ARRAY_BEGIN;
            while (ok && (tok = json_next(r)) != JSON_ARRAY_END) {
                ok = tok == JSON_NUMBER && r->is_uint && n < 2;
                if (ok) off[n++] = r->uint;
            }
            if (!ok || n != 2)
                return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                               path, name);
        } else if (!strcmp(r->str, "dtype") || !strcmp(r->str, "shape") || !strcmp(r->str, "data_offsets")) {
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': field '%s' given twice", path, name, r->str);
        } else {
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': unknown field '%.60s'", path, name, r->str);
        }
    }
    if (tok != JSON_OBJECT_END) return syntax_error(f, r, err);
    if (!have_dtype || !have_shape || !have_offsets)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': missing %s", path, name,
                       !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    if (overflow) return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': element count overflows", path, name);
    t->ndim = (int)rank;
    t->numel = numel;
    size_t item = st_dtype_size(t->dtype);
    if (numel > UINT64_MAX / item)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': byte size overflows", path, name);
    uint64_t bytes = numel * item, b = off[0], en = off[1];
    if (b > en || en > data_len)
        return ft_fail(err, FT_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] outside the data section (%llu bytes)", path,
                       name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
    if (en - b != bytes)
        return ft_fail(err, FT_ERR_FORMAT,
                       "%s: tensor '%s': shape x dtype needs %llu bytes but data_offsets give %llu", path, name,
                       (unsigned long long)bytes, (unsigned long long)(en - b));
    if (bytes > SIZE_MAX)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': too large for this machine", path, name);
    t->nbytes = (size_t)bytes;
    t->data = f->base + (f->size - data_len) + b;
    return FT_OK;
}

/* Reads __metadata__ (the reader is at its value): strings to strings. */
static ft_status parse_meta(st_file *f, json_reader *r, char **arena, ft_err *err) {
    if (json_next(r) != JSON_OBJECT_BEGIN)
        return ft_fail(err, FT_ERR_FORMAT, "%s: __metadata__ is not an object", f->path);
    json_token tok;
    while ((tok = json_next(r)) == JSON_KEY) {
        char *key = keep_string(r, arena);
        if (json_next(r) != JSON_STRING)
            return ft_fail(err, FT_ERR_FORMAT, "%s: __metadata__ value of '%.60s' is not a string", f->path, key);
        f->meta_keys[f->n_meta] = key;
        f->meta_values[f->n_meta] = keep_string(r, arena);
        f->n_meta++;
    }
    return tok == JSON_OBJECT_END ? FT_OK : syntax_error(f, r, err);
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Duplicate names among n strings, found by sorting a copy of the pointers (O(n log n)). */
static const char *find_duplicate(char **names, size_t n, int *oom) {
    *oom = 0;
    if (n < 2) return NULL;
    char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) { *oom = 1; return NULL; }
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

static ft_status parse_header(st_file *f, ft_err *err) {
    const char *path = f->path;
    if (f->size < 8)
        return ft_fail(err, FT_ERR_FORMAT, "%s: file is %zu bytes, too short for a safetensors header", path,
                       f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->base[i];
    if (hlen > ST_MAX_HEADER)
        return ft_fail(err, FT_ERR_FORMAT, "%s: header length %llu exceeds the 100 MiB limit", path,
                       (unsigned long long)hlen);
    if (hlen > f->size - 8)
        return ft_fail(err, FT_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                       path, (unsigned long long)hlen, f->size);
    if (hlen < 2 || f->base[8] != '{')
        return ft_fail(err, FT_ERR_FORMAT, "%s: header does not start with '{' (not a safetensors file?)", path);
    const char *text = (const char *)f->base + 8;
    header_counts c;
    ft_status st = count_header(f, text, (size_t)hlen, &c, err);
    if (st != FT_OK) return st;
    f->tensors = calloc(c.entries + 1, sizeof *f->tensors);
    f->meta_keys = calloc(c.meta + 1, sizeof(char *));
    f->meta_values = calloc(c.meta + 1, sizeof(char *));
    f->strings = malloc(c.string_bytes + 1);
    if (!f->tensors || !f->meta_keys || !f->meta_values || !f->strings)
        return ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory for a header of %zu entries", path, c.entries);
    char *arena = f->strings;
    uint64_t data_len = f->size - 8 - hlen;
    json_reader r;
    json_reader_init(&r, text, (size_t)hlen, ST_JSON_DEPTH);
    json_next(&r); /* '{' */
    int seen_meta = 0;
    json_token tok;
    while (st == FT_OK && (tok = json_next(&r)) == JSON_KEY) {
        if (strlen(r.str) != r.len) {
            st = ft_fail(err, FT_ERR_FORMAT, "%s: a tensor name contains a NUL byte", path);
        } else if (strcmp(r.str, "__metadata__") == 0) {
            st = seen_meta++ ? ft_fail(err, FT_ERR_FORMAT, "%s: duplicate __metadata__", path)
                             : parse_meta(f, &r, &arena, err);
        } else {
            st_tensor *t = &f->tensors[f->n_tensors];
            t->name = keep_string(&r, &arena);
            st = parse_entry(f, &r, t->name, data_len, t, err);
            if (st == FT_OK) f->n_tensors++;
        }
    }
    if (st == FT_OK && tok != JSON_OBJECT_END) st = syntax_error(f, &r, err);
    json_reader_free(&r);
    if (st != FT_OK) return st;
    int oom;
    const char *dup = find_duplicate(f->meta_keys, f->n_meta, &oom);
    if (dup || oom)
        return oom ? ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory", path)
                   : ft_fail(err, FT_ERR_FORMAT, "%s: duplicate __metadata__ key '%.60s'", path, dup);
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_tensor_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return ft_fail(err, FT_ERR_FORMAT, "%s: duplicate tensor name '%.60s'", path, f->tensors[i].name);
    if (f->n_tensors > 1) {
        range *rg = malloc(f->n_tensors * sizeof *rg);
        if (!rg) return ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        const uint8_t *data0 = f->base + (f->size - data_len);
        for (size_t i = 0; i < f->n_tensors; i++) {
            rg[i].begin = (uint64_t)(f->tensors[i].data - data0);
            rg[i].end = rg[i].begin + f->tensors[i].nbytes;
            rg[i].index = i;
        }
        qsort(rg, f->n_tensors, sizeof *rg, cmp_range);
        for (size_t i = 1; i < f->n_tensors && st == FT_OK; i++)
            if (rg[i].begin < rg[i - 1].end)
                st = ft_fail(err, FT_ERR_FORMAT, "%s: tensors '%.60s' and '%.60s' overlap in the data section", path,
                             f->tensors[rg[i - 1].index].name, f->tensors[rg[i].index].name);
        free(rg);
    }
    return st;
}

ft_status st_open_memory(st_file *f, const void *data, size_t size, const char *name, ft_err *err) {
    memset(f, 0, sizeof *f);
    f->path = dup_str(name ? name : "(memory)");
    if (!f->path) return ft_fail(err, FT_ERR_OUT_OF_MEMORY, "out of memory");
    f->base = data;
    f->size = size;
    ft_status st = parse_header(f, err);
    if (st != FT_OK) st_close(f);
    return st;
}

ft_status st_open(st_file *f, const char *path, ft_err *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ft_fail(err, FT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ft_fail(err, FT_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ft_fail(err, FT_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    f->path = dup_str(path);
    if (!f->path) {
        if (map) munmap(map, size);
        return ft_fail(err, FT_ERR_OUT_OF_MEMORY, "out of memory");
    }
    f->base = map;
    f->size = size;
    f->mapped = map != NULL;
    ft_status st = parse_header(f, err);
    if (st != FT_OK) st_close(f);
    return st;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}
