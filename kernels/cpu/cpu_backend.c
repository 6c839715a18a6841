/*
 * kernels/cpu/cpu_backend.c — the CPU backend: fp32 everywhere, host memory,
 * ops run synchronously (OpenMP inside an op, OpenBLAS for GEMMs).
 */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>

#include "../../engine/safetensors.h"
#include "cpu_ops.h"

/* im2col scratch: big enough for useful GEMM tiles, small enough to ignore. */
#define CPU_SCRATCH_FLOATS ((size_t)8 << 20)

typedef struct {
    float *scratch;
    int n_threads;
} cpu_impl;

int cpu_threads(ft_backend *be) { return ((cpu_impl *)be->impl)->n_threads; }

float *cpu_scratch(ft_backend *be, size_t *n_floats) {
    *n_floats = CPU_SCRATCH_FLOATS;
    return ((cpu_impl *)be->impl)->scratch;
}

static void cpu_destroy(ft_backend *be) {
    if (!be) return;
    cpu_impl *impl = be->impl;
    if (impl) free(impl->scratch);
    free(impl);
    free(be);
}

static void cpu_set_threads(ft_backend *be, int n) {
    if (n <= 0) n = omp_get_num_procs();
    ((cpu_impl *)be->impl)->n_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(1); /* parallel over fixed GEMM tiles instead: thread-count-invariant (gemm.c) */
}

static ft_status cpu_alloc(ft_backend *be, size_t bytes, void **ptr) {
    /* 64-byte alignment for vector loads; round the size up as aligned_alloc requires. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && bytes / (size_t)page >= (size_t)pages) { /* refused whatever the overcommit policy */
        *ptr = NULL;
        ft_backend_fail(be, "cannot allocate %.1f GiB: more than this machine's %.1f GiB of memory",
                        bytes / 1073741824.0, (double)pages * (double)page / 1073741824.0);
        return FT_ERR_OUT_OF_MEMORY;
    }
    *ptr = rounded ? aligned_alloc(64, rounded) : NULL;
    if (rounded && !*ptr) {
        ft_backend_fail(be, "cannot allocate %.1f MiB of host memory", bytes / 1048576.0);
        return FT_ERR_OUT_OF_MEMORY;
    }
    return FT_OK;
}

static void cpu_free(ft_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

static ft_status cpu_copy(ft_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
    return FT_OK;
}

static size_t cpu_weight_size(ft_backend *be, ft_weight_kind kind, size_t n) {
    (void)be;
    (void)kind;
    return n * sizeof(float);
}

static ft_status cpu_upload_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, size_t n,
                                   ft_weight_kind kind) {
    (void)be;
    (void)kind;
    st_tensor t = {0};
    t.dtype = src_dtype == FT_DTYPE_F32 ? ST_F32 : src_dtype == FT_DTYPE_F16 ? ST_F16 : ST_BF16;
    t.numel = n;
    t.data = src;
    st_to_f32(&t, dst);
    return FT_OK;
}

static ft_status cpu_sync(ft_backend *be) {
    return be->error[0] ? FT_ERR_BACKEND : FT_OK;
}

static void cpu_host_fn(ft_backend *be, void (*fn)(void *), void *user) {
    (void)be;
    fn(user);
}

ft_backend *ft_backend_cpu_create(int n_threads, char *err, size_t err_size) {
    ft_backend *be = calloc(1, sizeof *be);
    cpu_impl *impl = calloc(1, sizeof *impl);
    if (impl) impl->scratch = malloc(CPU_SCRATCH_FLOATS * sizeof(float));
    if (!be || !impl || !impl->scratch) {
        if (impl) free(impl->scratch);
        free(impl);
        free(be);
        snprintf(err, err_size, "out of memory creating the CPU backend");
        return NULL;
    }
    be->name = "cpu";
    be->act_size = sizeof(float);
    be->impl = impl;
    be->host_memory = 1;
    be->max_attention_tokens = cpu_attention_max_tokens(CPU_SCRATCH_FLOATS);
    be->destroy = cpu_destroy;
    be->set_threads = cpu_set_threads;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->weight_size = cpu_weight_size;
    be->upload_weight = cpu_upload_weight;
    be->sync = cpu_sync;
    be->host_fn = cpu_host_fn;
    be->linear = cpu_linear;
    be->cast = cpu_cast;
    be->timestep_embedding = cpu_timestep_embedding;
    be->embedding_lookup = cpu_embedding_lookup;
    be->patch_embed = cpu_patch_embed;
    be->unpatchify = cpu_unpatchify;
    be->layernorm_modulate = cpu_layernorm_modulate;
    be->gated_residual = cpu_gated_residual;
    be->group_norm = cpu_group_norm;
    be->attention = cpu_attention;
    be->conv2d = cpu_conv2d;
    be->silu = cpu_silu;
    be->add = cpu_add;
    be->scale = cpu_scale;
    be->transpose = cpu_transpose;
    be->cfg_combine = cpu_cfg_combine;
    be->euler_update = cpu_euler_update;
    be->heun_update = cpu_heun_update;
    be->randn = cpu_randn;
    be->to_rgb8 = cpu_to_rgb8;
    cpu_set_threads(be, n_threads);
    return be;
}
