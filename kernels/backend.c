/* kernels/backend.c — backend selection and shared helpers. */
#include "backend.h"

#include <stdarg.h>
#include <stdio.h>

void ft_backend_fail(ft_backend *be, const char *fmt, ...) {
    if (!be || be->error[0]) return; /* keep the first error */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->error, sizeof be->error, fmt, ap);
    va_end(ap);
    if (!be->error[0]) snprintf(be->error, sizeof be->error, "backend error");
}

#ifndef FT_WITH_CUDA
ft_backend *ft_backend_cuda_create(int device, ft_dtype compute_dtype, char *err, size_t err_size) {
    (void)device;
    (void)compute_dtype;
    snprintf(err, err_size, "this build has no CUDA backend (rebuild with nvcc available)");
    return NULL;
}

int ft_cuda_available(void) { return 0; }
#endif

ft_backend *ft_backend_create(ft_backend_kind kind, int device, int n_threads, ft_dtype compute_dtype, char *err,
                              size_t err_size) {
    switch (kind) {
    case FT_BACKEND_CPU: return ft_backend_cpu_create(n_threads, err, err_size);
    case FT_BACKEND_CUDA: return ft_backend_cuda_create(device, compute_dtype, err, err_size);
    case FT_BACKEND_AUTO:
        if (ft_cuda_available()) {
            ft_backend *be = ft_backend_cuda_create(device, compute_dtype, err, err_size);
            if (be) return be;
        }
        return ft_backend_cpu_create(n_threads, err, err_size);
    }
    snprintf(err, err_size, "unknown backend kind %d", (int)kind);
    return NULL;
}
