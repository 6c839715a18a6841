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
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
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

/* Parses one tensor entry; returns FT_OK or a message naming the tensor. */
static ft_status parse_entry(st_file *f, const char *name, const json_value *e, uint64_t data_len,
                             st_tensor *t, ft_err *err) {
    const char *path = f->path;
    if (e->type != JSON_OBJECT)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    for (size_t k = 0; k < e->count; k++) {
        const char *key = e->keys[k];
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': unknown field '%s'", path, name, key);
    }
    const json_value *dt = json_get(e, "dtype");
    const json_value *sh = json_get(e, "shape");
    const json_value *off = json_get(e, "data_offsets");
    if (!dt || !sh || !off)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': missing %s", path, name,
                       !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (dt->type != JSON_STRING || !dtype_from_name(dt->str, &t->dtype))
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s' (supported: F32 F16 BF16 I32 I64 U8)",
                       path, name, dt->type == JSON_STRING ? dt->str : "(not a string)");
    if (sh->type != JSON_ARRAY)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': shape is not an array", path, name);
    if (sh->count < 1 || sh->count > ST_MAX_DIMS)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': rank %zu outside 1..%d", path, name, sh->count,
                       ST_MAX_DIMS);
    uint64_t numel = 1;
    for (size_t d = 0; d < sh->count; d++) {
        const json_value *dim = &sh->items[d];
        if (dim->type != JSON_NUMBER || !dim->is_uint || dim->uint > (uint64_t)INT64_MAX)
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': dimension %zu is not a non-negative integer",
                           path, name, d);
        if (dim->uint != 0 && numel > UINT64_MAX / dim->uint)
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': element count overflows", path, name);
        numel *= dim->uint;
        t->shape[d] = (int64_t)dim->uint;
    }
    t->ndim = (int)sh->count;
    t->numel = numel;
    size_t item = st_dtype_size(t->dtype);
    if (numel > UINT64_MAX / item)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': byte size overflows", path, name);
    uint64_t bytes = numel * item;
    if (off->type != JSON_ARRAY || off->count != 2 || off->items[0].type != JSON_NUMBER ||
        off->items[1].type != JSON_NUMBER || !off->items[0].is_uint || !off->items[1].is_uint)
        return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                       path, name);
    uint64_t b = off->items[0].uint, en = off->items[1].uint;
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
    char jerr[200];
    json_value *root = json_parse((const char *)f->base + 8, (size_t)hlen, jerr, sizeof jerr);
    if (!root) return ft_fail(err, FT_ERR_FORMAT, "%s: header is not valid JSON: %s", path, jerr);
    ft_status st = FT_OK;
    uint64_t data_len = f->size - 8 - hlen;
    if (root->type != JSON_OBJECT) {
        st = ft_fail(err, FT_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    size_t n_entries = root->count;
    f->tensors = calloc(n_entries ? n_entries : 1, sizeof *f->tensors);
    if (!f->tensors) { st = ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory", path); goto done; }
    int seen_meta = 0;
    for (size_t i = 0; i < root->count; i++) {
        const char *key = root->keys[i];
        if (strlen(key) != root->key_lens[i]) {
            st = ft_fail(err, FT_ERR_FORMAT, "%s: a tensor name contains a NUL byte", path);
            goto done;
        }
        const json_value *e = &root->items[i];
        if (strcmp(key, "__metadata__") == 0) {
            if (seen_meta++) { st = ft_fail(err, FT_ERR_FORMAT, "%s: duplicate __metadata__", path); goto done; }
            if (e->type != JSON_OBJECT) {
                st = ft_fail(err, FT_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                goto done;
            }
            f->meta_keys = calloc(e->count ? e->count : 1, sizeof(char *));
            f->meta_values = calloc(e->count ? e->count : 1, sizeof(char *));
            if (!f->meta_keys || !f->meta_values) {
                st = ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
                goto done;
            }
            for (size_t k = 0; k < e->count; k++) {
                if (e->items[k].type != JSON_STRING) {
                    st = ft_fail(err, FT_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", path,
                                 e->keys[k]);
                    goto done;
                }
                for (size_t j = 0; j < k; j++)
                    if (strcmp(e->keys[j], e->keys[k]) == 0) {
                        st = ft_fail(err, FT_ERR_FORMAT, "%s: duplicate __metadata__ key '%s'", path, e->keys[k]);
                        goto done;
                    }
                f->meta_keys[f->n_meta] = dup_str(e->keys[k]);
                f->meta_values[f->n_meta] = dup_str(e->items[k].str);
                f->n_meta++;
                if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1]) {
                    st = ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
                    goto done;
                }
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->n_tensors];
        st = parse_entry(f, key, e, data_len, t, err);
        if (st != FT_OK) goto done;
        t->name = dup_str(key);
        if (!t->name) { st = ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory", path); goto done; }
        f->n_tensors++;
    }
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_tensor_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            st = ft_fail(err, FT_ERR_FORMAT, "%s: duplicate tensor name '%s'", path, f->tensors[i].name);
            goto done;
        }
    if (f->n_tensors > 1) {
        range *r = malloc(f->n_tensors * sizeof *r);
        if (!r) { st = ft_fail(err, FT_ERR_OUT_OF_MEMORY, "%s: out of memory", path); goto done; }
        const uint8_t *data0 = f->base + (f->size - data_len);
        for (size_t i = 0; i < f->n_tensors; i++) {
            r[i].begin = (uint64_t)(f->tensors[i].data - data0);
            r[i].end = r[i].begin + f->tensors[i].nbytes;
            r[i].index = i;
        }
        qsort(r, f->n_tensors, sizeof *r, cmp_range);
        for (size_t i = 1; i < f->n_tensors; i++)
            if (r[i].begin < r[i - 1].end) {
                st = ft_fail(err, FT_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", path,
                             f->tensors[r[i - 1].index].name, f->tensors[r[i].index].name);
                break;
            }
        free(r);
    }
done:
    json_free(root);
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
