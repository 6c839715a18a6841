/* engine/weights.c — one-allocation weight binding (see weights.h). */
#include "weights.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finite.h"

#define WEIGHT_ALIGN 256

static ft_status wspec_vadd(ft_wspec_list *l, void **slot, ft_weight_kind kind, size_t slot_numel, size_t offset,
                            int ndim, const int64_t *shape, const char *fmt, va_list ap) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        ft_wspec *items = realloc(l->items, cap * sizeof *items);
        if (!items) return FT_ERR_OUT_OF_MEMORY;
        l->items = items;
        l->cap = cap;
    }
    ft_wspec *s = &l->items[l->n++];
    memset(s, 0, sizeof *s);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    s->ndim = ndim;
    for (int d = 0; d < ndim; d++) s->shape[d] = shape[d];
    s->kind = kind;
    s->slot = slot;
    s->slot_numel = slot_numel;
    s->offset = offset;
    return FT_OK;
}

ft_status wspec_add(ft_wspec_list *l, void **slot, ft_weight_kind kind, int ndim, const int64_t *shape,
                    const char *fmt, ...) {
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    va_list ap;
    va_start(ap, fmt);
    ft_status st = wspec_vadd(l, slot, kind, numel, 0, ndim, shape, fmt, ap);
    va_end(ap);
    return st;
}

ft_status wspec_add_part(ft_wspec_list *l, void **slot, ft_weight_kind kind, size_t slot_numel, size_t offset,
                         int ndim, const int64_t *shape, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ft_status st = wspec_vadd(l, slot, kind, slot_numel, offset, ndim, shape, fmt, ap);
    va_end(ap);
    return st;
}

void wspec_free(ft_wspec_list *l) {
    free(l->items);
    memset(l, 0, sizeof *l);
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

ft_status weights_load(ft_backend *be, const st_file *f, const ft_wspec_list *specs, void **arena,
                       size_t *n_params, ft_load_progress progress, void *user, ft_err *err) {
    *arena = NULL;
    *n_params = 0;
    /* 1. every needed tensor is present, float, with the right shape */
    for (size_t i = 0; i < specs->n; i++) {
        const ft_wspec *s = &specs->items[i];
        const st_tensor *t = st_find(f, s->name);
        if (!t) return ft_fail(err, FT_ERR_FORMAT, "%s: missing tensor '%s'", f->path, s->name);
        if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                           f->path, s->name, st_dtype_name(t->dtype));
        int same = t->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++) same = t->shape[d] == s->shape[d];
        if (!same) {
            char want[96], got[96];
            shape_str(want, sizeof want, s->ndim, s->shape);
            shape_str(got, sizeof got, t->ndim, t->shape);
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s' has shape %s, the config needs %s", f->path,
                           s->name, got, want);
        }
    }
    /* 2. nothing unexpected (a config/file mismatch, e.g. a wrong depth) */
    for (size_t i = 0; i < f->n_tensors; i++) {
        int known = 0;
        for (size_t j = 0; j < specs->n && !known; j++) known = strcmp(specs->items[j].name, f->tensors[i].name) == 0;
        if (!known)
            return ft_fail(err, FT_ERR_FORMAT, "%s: unexpected tensor '%s' for this model config", f->path,
                           f->tensors[i].name);
    }
    /* 3. one allocation for all destinations */
    size_t total = 0;
    for (size_t i = 0; i < specs->n; i++) {
        const ft_wspec *s = &specs->items[i];
        if (!s->slot_numel) continue;
        total += (be->weight_size(be, s->kind, s->slot_numel) + WEIGHT_ALIGN - 1) / WEIGHT_ALIGN * WEIGHT_ALIGN;
    }
    void *base = NULL;
    ft_status st = be->alloc(be, total ? total : WEIGHT_ALIGN, &base);
    if (st != FT_OK)
        return ft_fail(err, st, "%s: cannot allocate %.1f MiB for the weights on the %s backend: %s", f->path,
                       total / 1048576.0, be->name, be->error);
    size_t off = 0;
    for (size_t i = 0; i < specs->n; i++) {
        const ft_wspec *s = &specs->items[i];
        if (!s->slot_numel) continue;
        *s->slot = (char *)base + off;
        off += (be->weight_size(be, s->kind, s->slot_numel) + WEIGHT_ALIGN - 1) / WEIGHT_ALIGN * WEIGHT_ALIGN;
    }
    /* 4. convert each tensor into place */
    size_t params = 0;
    for (size_t i = 0; i < specs->n; i++) {
        const ft_wspec *s = &specs->items[i];
        const st_tensor *t = st_find(f, s->name);
        ft_dtype dt = t->dtype == ST_F32 ? FT_DTYPE_F32 : t->dtype == ST_F16 ? FT_DTYPE_F16 : FT_DTYPE_BF16;
        /* a NaN or Inf weight would turn every image black without a word: refuse the file */
        size_t bad = finite_scan(t->data, dt, t->numel);
        if (bad < t->numel) {
            be->free(be, base);
            return ft_fail(err, FT_ERR_FORMAT, "%s: tensor '%s' holds %s at element %zu of %llu: the file is corrupt",
                           f->path, s->name, finite_kind(t->data, dt, bad), bad, (unsigned long long)t->numel);
        }
        char *dst = (char *)*s->slot + be->weight_size(be, s->kind, s->offset);
        if (s->kind == FT_WEIGHT_CONV && be->upload_conv_weight && s->ndim == 4)
            st = be->upload_conv_weight(be, dst, t->data, dt, (int)s->shape[0], (int)s->shape[1], (int)s->shape[2]);
        else if (s->kind == FT_WEIGHT_MATRIX && s->ndim == 2 && be->upload_linear_weight)
            st = be->upload_linear_weight(be, dst, t->data, dt, (int)s->shape[0], (int)s->shape[1]);
        else st = be->upload_weight(be, dst, t->data, dt, t->numel, s->kind == FT_WEIGHT_CONV ? FT_WEIGHT_MATRIX : s->kind);
        if (st != FT_OK) {
            be->free(be, base);
            return ft_fail(err, st, "%s: cannot upload tensor '%s': %s", f->path, s->name, be->error);
        }
        params += t->numel;
        if (progress && progress((int)i + 1, (int)specs->n, user)) {
            be->free(be, base);
            return ft_fail(err, FT_ERR_CANCELLED, "%s: loading cancelled by the progress callback", f->path);
        }
    }
    *arena = base;
    *n_params = params;
    return FT_OK;
}

ft_status meta_check_model(const st_file *f, const char *role, const char *arch, ft_err *err) {
    const char *fmt = st_meta(f, "flowturbo.format");
    if (!fmt)
        return ft_fail(err, FT_ERR_FORMAT,
                       "%s: no 'flowturbo.format' metadata: not an engine weight file (convert it with "
                       "weights_tool/convert.py)",
                       f->path);
    if (strcmp(fmt, "1") != 0)
        return ft_fail(err, FT_ERR_FORMAT, "%s: flowturbo.format '%s' is not supported (this build reads 1)",
                       f->path, fmt);
    const char *r = st_meta(f, "role");
    if (!r) return ft_fail(err, FT_ERR_FORMAT, "%s: metadata 'role' is missing", f->path);
    if (strcmp(r, role) != 0) return ft_fail(err, FT_ERR_FORMAT, "%s: file holds a %s, expected a %s", f->path, r, role);
    const char *a = st_meta(f, "arch");
    if (!a || strcmp(a, arch) != 0)
        return ft_fail(err, FT_ERR_FORMAT, "%s: metadata 'arch' = '%s' is not supported for a %s (expected '%s')",
                       f->path, a ? a : "(missing)", role, arch);
    return FT_OK;
}

ft_status meta_int(const st_file *f, const char *key, int lo, int hi, int *out, ft_err *err) {
    const char *v = st_meta(f, key);
    if (!v) return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' is missing", f->path, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' = '%s' is not an integer in [%d, %d]", f->path, key,
                       v, lo, hi);
    *out = (int)x;
    return FT_OK;
}

ft_status meta_double(const st_file *f, const char *key, double *out, ft_err *err) {
    const char *v = st_meta(f, key);
    if (!v) return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' is missing", f->path, key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x <= 0)
        return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' = '%s' is not a positive number", f->path, key, v);
    *out = x;
    return FT_OK;
}

ft_status meta_bool(const st_file *f, const char *key, int *out, ft_err *err) {
    const char *v = st_meta(f, key);
    if (!v) return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' is missing", f->path, key);
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0")) *out = 0;
    else return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' = '%s' is not true/false", f->path, key, v);
    return FT_OK;
}
