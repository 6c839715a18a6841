/*
 * engine/weights.h — binds the tensors of a safetensors file to one backend
 * allocation per model. A model describes what it needs as a list of specs
 * (name, shape, kind, destination); weights_load checks the file against it
 * (presence, shape, float dtype, no unexpected tensors), allocates once and
 * converts every tensor into place, refusing NaN and Inf values (named by
 * tensor and element index). Several specs may fill one destination
 * at different offsets (e.g. all adaLN matrices into one GEMM operand).
 */
#ifndef FT_WEIGHTS_H
#define FT_WEIGHTS_H

#include "../kernels/backend.h"
#include "errors.h"
#include "safetensors.h"

typedef struct {
    char name[128];
    int ndim;
    int64_t shape[4];
    ft_weight_kind kind;
    void **slot;       /* receives the backend pointer of the destination */
    size_t slot_numel; /* elements of the destination (0: not the owner) */
    size_t offset;     /* element offset of this tensor in the destination */
} ft_wspec;

typedef struct {
    ft_wspec *items;
    size_t n, cap;
} ft_wspec_list;

/* Adds a tensor that owns its destination (slot_numel = its numel). */
ft_status wspec_add(ft_wspec_list *l, void **slot, ft_weight_kind kind, int ndim, const int64_t *shape,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Adds a tensor placed at element `offset` of a destination shared with other
 * specs; `slot_numel` is non-zero for exactly one spec per destination. */
ft_status wspec_add_part(ft_wspec_list *l, void **slot, ft_weight_kind kind, size_t slot_numel, size_t offset,
                         int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
void wspec_free(ft_wspec_list *l);

/* Called after each tensor; non-zero stops the loading (FT_ERR_CANCELLED, nothing stays allocated). */
typedef int (*ft_load_progress)(int done, int total, void *user);

/* On success *arena is the single backend allocation holding every weight and
 * *n_params the element count. On failure nothing stays allocated. */
ft_status weights_load(ft_backend *be, const st_file *f, const ft_wspec_list *specs, void **arena,
                       size_t *n_params, ft_load_progress progress, void *user, ft_err *err);

/* Checks that f is an engine-format file (flowturbo.format 1) holding a model
 * of `role` ("predictor", "refiner", "vae") and family `arch`. */
ft_status meta_check_model(const st_file *f, const char *role, const char *arch, ft_err *err);

/* Reads an integer / float / boolean metadata value with a clear error. */
ft_status meta_int(const st_file *f, const char *key, int lo, int hi, int *out, ft_err *err);
ft_status meta_double(const st_file *f, const char *key, double *out, ft_err *err);
ft_status meta_bool(const st_file *f, const char *key, int *out, ft_err *err);

#endif
