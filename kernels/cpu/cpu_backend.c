/*
 * kernels/cpu/cpu_backend.c — the CPU backend: fp32 everywhere, host memory,
 * ops run synchronously (OpenMP inside an op, OpenBLAS for GEMMs).
 *
 * Threads: one pool only, OpenMP's. OpenBLAS runs single-threaded inside
 * OpenMP tasks (gemm.c cuts a GEMM into a fixed tile grid), so its own pool,
 * whose idle threads busy-wait for ~0.1 s after every call, never starts.
 * At the end of every public call (leave) the OpenMP pool is released, so
 * no thread spins or waits between calls and a host application's threads
 * get the cores; the next call starts the threads again (microseconds).
 */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <malloc.h>
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
    int caller_threads; /* the calling thread's OpenMP thread count before enter */
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

/* n <= 0 or more than the cores available to the process: all of them. */
static void cpu_set_threads(ft_backend *be, int n) {
    int procs = omp_get_num_procs();
    if (n <= 0 || n > procs) n = procs;
    ((cpu_impl *)be->impl)->n_threads = n;
    openblas_set_num_threads(1);
}

static void cpu_enter(ft_backend *be) {
    cpu_impl *impl = be->impl;
    impl->caller_threads = omp_get_max_threads();
    omp_set_num_threads(impl->n_threads);
}

static void cpu_leave(ft_backend *be) {
    omp_set_num_threads(((cpu_impl *)be->impl)->caller_threads);
    /* ends this thread's pool (a no-op inside a caller's parallel region) */
    omp_pause_resource_all(omp_pause_soft);
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
    /* the packed weights in this block are gone: a later block at the same address is plain */
    if (ptr) cpu_packed_forget(ptr, (const char *)ptr + malloc_usable_size(ptr));
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
    be->host_memory = 1;
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
    be->upload_linear_weight = cpu_upload_linear_weight;
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
    be->to_pixels = cpu_to_pixels;
    be->enter = cpu_enter;
    be->leave = cpu_leave;
    cpu_set_threads(be, n_threads);
    /* code that runs the ops directly (tests, benchmarks) gets the thread count on this thread; the engine's
     * contexts call leave right after creating the backend, which restores the caller's count */
    impl->caller_threads = omp_get_max_threads();
    omp_set_num_threads(impl->n_threads);
    return be;
}
