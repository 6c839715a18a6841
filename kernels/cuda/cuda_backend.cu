/*
 * kernels/cuda/cuda_backend.cu — the CUDA backend: device selection, memory,
 * weight conversion, streams, CUDA graphs, NVTX, and the op table.
 *
 * One non-blocking stream per backend; every op is enqueued on it, so the
 * engine's op sequence runs in order and can be captured into one graph
 * (begin_capture / end_capture / replay) and replayed with no host work but
 * the launch. Device memory: the engine allocates one block per model and
 * one per plan; the backend itself allocates, once at creation, the cuBLASLt
 * workspace, the im2col workspace of conv2d and a small reduction scratch.
 * Nothing is allocated while sampling, and nothing synchronises the host
 * but sync/upload/download.
 *
 * Precision: GEMM operands (act) are bf16 (default) or fp16
 * (ft_context_params.compute_dtype); accumulation, residual stream,
 * normalisation / softmax statistics and the ODE state are fp32.
 *
 * Environment: FT_NO_CUDA_GRAPHS=1 leaves the graph hooks NULL, so plans run
 * the same kernels eagerly (as use_graphs = 0 does).
 */
#include <nvtx3/nvToolsExt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.cuh"
#include "common.cuh"
#include "conv2d.cuh"
#include "conv_cudnn.cuh"
#include "fmap.cuh"
#include "elementwise.cuh"
#include "embed.cuh"
#include "gemm.cuh"
#include "norm.cuh"
#include "output.cuh"
#include "rng.cuh"

#define CU_LT_WORKSPACE ((size_t)32 << 20)  /* cuBLASLt workspace, bytes (NVIDIA's Hopper advice) */
#define CU_COL_ELEMS ((size_t)32 << 20)     /* im2col workspace, act elements (64 MiB) */
#define CU_SMALL_FLOATS ((size_t)1 << 20)   /* reduction partials (4 MiB) */

/* ---- lifetime ---- */

static void cu_destroy(ft_backend *be) {
    if (!be) return;
    cu_impl *c = cu_of(be);
    if (c) {
        cudaSetDevice(c->device);
        if (c->stream) cudaStreamSynchronize(c->stream);
        cu_dnn_destroy(c);
        cu_gemm_cache_free(c);
        free(c->gemm);
        if (c->lt) cublasLtDestroy(c->lt);
        if (c->lt_ws) cudaFree(c->lt_ws);
        if (c->col) cudaFree(c->col);
        if (c->small) cudaFree(c->small);
        if (c->stream) cudaStreamDestroy(c->stream);
        cudaGetLastError(); /* nothing to report any more */
        free(c);
    }
    free(be);
}

static void cu_set_threads(ft_backend *be, int n_threads) {
    (void)be;
    (void)n_threads;
}

/* ---- memory ---- */

static ft_status cu_alloc(ft_backend *be, size_t bytes, void **ptr) {
    cu_impl *c = cu_of(be);
    *ptr = NULL;
    if (!bytes) return FT_OK;
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    if (c->capturing) {
        ft_backend_fail(be, "alloc of %zu bytes while a graph is being captured", bytes);
        return FT_ERR_INTERNAL;
    }
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e == cudaSuccess) {
        if (cu_alloc_track(*ptr, bytes)) return FT_OK;
        cudaFree(*ptr);
        *ptr = NULL;
        ft_backend_fail(be, "out of host memory tracking device allocations");
        return FT_ERR_OUT_OF_MEMORY;
    }
    *ptr = NULL;
    cudaGetLastError(); /* an allocation failure is not sticky: clear it */
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    if (e == cudaErrorMemoryAllocation) {
        ft_backend_fail(be, "CUDA out of memory: cannot allocate %.1f MiB on GPU %d (%s): %.1f MiB free of %.1f MiB",
                        bytes / 1048576.0, c->device, c->name, free_b / 1048576.0, total_b / 1048576.0);
        return FT_ERR_OUT_OF_MEMORY;
    }
    CU_CHECK(be, e);
    return FT_ERR_BACKEND;
}

static void cu_free(ft_backend *be, void *ptr) {
    if (!ptr) return;
    if (cu_of(be)->capturing) { /* cudaFree would invalidate the capture */
        ft_backend_fail(be, "free while a graph is being captured");
        return;
    }
    cu_alloc_untrack(ptr); /* whichever backend allocated it (shared models) */
    cu_enter(be);
    CU_CHECK(be, cudaFree(ptr));
}

static ft_status cu_copy(ft_backend *be, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    cu_impl *c = cu_of(be);
    if (!bytes) return FT_OK;
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    if (c->capturing) {
        ft_backend_fail(be, "host transfer while a graph is being captured");
        return FT_ERR_INTERNAL;
    }
    /* stream-ordered after all enqueued work, then waited for */
    if (!CU_CHECK(be, cudaMemcpyAsync(dst, src, bytes, kind, c->stream))) return FT_ERR_BACKEND;
    if (!CU_CHECK(be, cudaStreamSynchronize(c->stream))) return FT_ERR_BACKEND;
    return FT_OK;
}

static ft_status cu_upload(ft_backend *be, void *dst, const void *src, size_t bytes) {
    return cu_copy(be, dst, src, bytes, cudaMemcpyHostToDevice);
}

static ft_status cu_download(ft_backend *be, void *dst, const void *src, size_t bytes) {
    return cu_copy(be, dst, src, bytes, cudaMemcpyDeviceToHost);
}

/* Portable: pinned for every context of the process (FID lanes are several backends on one device). */
static void *cu_host_alloc(ft_backend *be, size_t bytes) {
    void *p = NULL;
    if (!cu_enter(be)) return NULL;
    if (cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable) != cudaSuccess) {
        cudaGetLastError(); /* not sticky: the caller reports the failed allocation */
        return NULL;
    }
    return p;
}

static void cu_host_free(ft_backend *be, void *ptr) {
    if (!ptr || !cu_enter(be)) return;
    CU_CHECK(be, cudaFreeHost(ptr));
}

/* Where the act copy of an FT_WEIGHT_BIAS starts: after its f32 values. */
static size_t bias_act_offset(size_t n) { return (n * sizeof(float) + 255) / 256 * 256; }

static size_t cu_weight_size(ft_backend *be, ft_weight_kind kind, size_t n) {
    (void)be;
    if (kind == FT_WEIGHT_BIAS) return n ? bias_act_offset(n) + n * 2 : 0;
    return kind == FT_WEIGHT_MATRIX || kind == FT_WEIGHT_CONV ? n * 2 : n * sizeof(float);
}

ft_status cu_upload_bytes(ft_backend *be, void *dst, const void *src, size_t bytes) {
    return cu_upload(be, dst, src, bytes);
}

/* Host-side element conversions (load time only). */
float cu_host_to_f32(const void *src, ft_dtype dt, size_t i) {
    if (dt == FT_DTYPE_F32) return ((const float *)src)[i];
    uint16_t h;
    memcpy(&h, (const char *)src + 2 * i, 2);
    if (dt == FT_DTYPE_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    __half_raw r;
    r.x = h;
    return __half2float(__half(r));
}

uint16_t cu_host_to_act_bits(float f, ft_dtype act) {
    uint16_t bits;
    if (act == FT_DTYPE_BF16) {
        __nv_bfloat16 b = __float2bfloat16_rn(f);
        memcpy(&bits, &b, 2);
    } else {
        __half h = __float2half_rn(f);
        memcpy(&bits, &h, 2);
    }
    return bits;
}

static ft_status cu_upload_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, size_t n,
                                  ft_weight_kind kind) {
    cu_impl *c = cu_of(be);
    if (!n) return FT_OK;
    if (kind == FT_WEIGHT_BIAS) { /* f32 values, then the act copy cuBLASLt's fused bias needs */
        void *act = (char *)dst + bias_act_offset(n);
        ft_status st = cu_upload_weight(be, dst, src, src_dtype, n, FT_WEIGHT_VECTOR);
        if (st == FT_OK) st = cu_upload_weight(be, act, src, src_dtype, n, FT_WEIGHT_MATRIX);
        if (st == FT_OK && !cu_bias_register(dst, act)) {
            ft_backend_fail(be, "out of host memory registering a bias");
            st = FT_ERR_OUT_OF_MEMORY;
        }
        return st;
    }
    int to_act = kind == FT_WEIGHT_MATRIX || kind == FT_WEIGHT_CONV;
    /* already in the device's type: copy as is */
    if ((to_act && src_dtype == c->act) || (!to_act && src_dtype == FT_DTYPE_F32))
        return cu_upload(be, dst, src, n * (to_act ? 2 : 4));
    const size_t chunk = (size_t)4 << 20;
    size_t esz = to_act ? 2 : 4;
    void *stage = malloc(chunk * esz);
    if (!stage) {
        ft_backend_fail(be, "out of host memory converting weights");
        return FT_ERR_OUT_OF_MEMORY;
    }
    ft_status st = FT_OK;
    for (size_t i0 = 0; i0 < n && st == FT_OK; i0 += chunk) {
        size_t m = n - i0 < chunk ? n - i0 : chunk;
        for (size_t i = 0; i < m; i++) {
            float f = cu_host_to_f32(src, src_dtype, i0 + i);
            if (!to_act) ((float *)stage)[i] = f;
            else ((uint16_t *)stage)[i] = cu_host_to_act_bits(f, c->act);
        }
        st = cu_upload(be, (char *)dst + i0 * esz, stage, m * esz);
    }
    free(stage);
    return st;
}

static ft_status cu_sync(ft_backend *be) {
    cu_impl *c = cu_of(be);
    if (c->capturing) {
        ft_backend_fail(be, "sync while a graph is being captured");
        return FT_ERR_BACKEND;
    }
    if (cu_enter(be)) CU_CHECK(be, cudaStreamSynchronize(c->stream));
    return be->error[0] ? FT_ERR_BACKEND : FT_OK;
}

static void cu_host_fn(ft_backend *be, void (*fn)(void *), void *user) {
    if (!cu_enter(be)) return;
    CU_CHECK(be, cudaLaunchHostFunc(cu_of(be)->stream, fn, user));
}

/* ---- graphs ---- */

static ft_status cu_begin_capture(ft_backend *be) {
    cu_impl *c = cu_of(be);
    if (c->capturing) {
        ft_backend_fail(be, "begin_capture: a capture is already running");
        return FT_ERR_INTERNAL;
    }
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    /* thread-local: only this thread's unsafe calls (cudaMalloc, syncs) are
     * refused, other contexts in other threads are unaffected */
    if (!CU_CHECK(be, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal))) return FT_ERR_BACKEND;
    c->capturing = 1;
    return FT_OK;
}

static ft_status cu_end_capture(ft_backend *be, void **graph) {
    cu_impl *c = cu_of(be);
    *graph = NULL;
    if (!c->capturing) {
        ft_backend_fail(be, "end_capture without begin_capture");
        return FT_ERR_INTERNAL;
    }
    c->capturing = 0;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (e != cudaSuccess || be->error[0]) {
        if (g) cudaGraphDestroy(g);
        CU_CHECK(be, e);
        cudaGetLastError();
        if (!be->error[0]) ft_backend_fail(be, "graph capture failed");
        return FT_ERR_BACKEND;
    }
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    if (!CU_CHECK(be, e)) return FT_ERR_BACKEND;
    *graph = (void *)exec;
    return FT_OK;
}

static ft_status cu_replay(ft_backend *be, void *graph) {
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    if (!CU_CHECK(be, cudaGraphLaunch((cudaGraphExec_t)graph, cu_of(be)->stream))) return FT_ERR_BACKEND;
    return FT_OK;
}

static void cu_graph_free(ft_backend *be, void *graph) {
    if (!graph) return;
    cu_enter(be);
    CU_CHECK(be, cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

/* ---- NVTX ---- */

static void cu_range_push(ft_backend *be, const char *name) {
    (void)be;
    nvtxRangePushA(name);
}

static void cu_range_pop(ft_backend *be) {
    (void)be;
    nvtxRangePop();
}

/* ---- creation ---- */

int ft_cuda_available(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

/* Both act types are 2 bytes, so buffers sized for one hold the other. */
static ft_dtype cu_set_act_dtype(ft_backend *be, ft_dtype act) {
    cu_impl *c = cu_of(be);
    ft_dtype prev = c->act;
    if (act == FT_DTYPE_F16 || act == FT_DTYPE_BF16) {
        c->act = act;
        c->act_cuda = act == FT_DTYPE_F16 ? CUDA_R_16F : CUDA_R_16BF;
    }
    return prev;
}

ft_backend *ft_backend_cuda_create(int device, ft_dtype compute_dtype, char *err, size_t err_size) {
    if (compute_dtype != FT_DTYPE_BF16 && compute_dtype != FT_DTYPE_F16) {
        snprintf(err, err_size,
                 "the CUDA backend computes GEMMs in bf16 or fp16; compute dtype f32 is only available on the CPU "
                 "backend");
        return NULL;
    }
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        if (e != cudaSuccess)
            snprintf(err, err_size, "no usable CUDA device: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
        else snprintf(err, err_size, "no CUDA device found");
        cudaGetLastError();
        return NULL;
    }
    if (device < 0 || device >= n) {
        snprintf(err, err_size, "CUDA device %d does not exist (%d device%s present)", device, n, n == 1 ? "" : "s");
        return NULL;
    }
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
        snprintf(err, err_size, "cannot query CUDA device %d: %s", device, cudaGetErrorString(e));
        cudaGetLastError();
        return NULL;
    }
    if (prop.major < 8) {
        snprintf(err, err_size,
                 "GPU %d (%s) has compute capability %d.%d; the CUDA backend needs 8.0 or newer (Ampere, Ada, "
                 "Hopper): bf16 tensor-core instructions",
                 device, prop.name, prop.major, prop.minor);
        return NULL;
    }
    if ((e = cudaSetDevice(device)) != cudaSuccess || (e = kernels_probe()) != cudaSuccess) {
        snprintf(err, err_size,
                 "GPU %d (%s, compute capability %d.%d) cannot run this build's kernels (built for sm_80, sm_90a and "
                 "compute_80 PTX): %s",
                 device, prop.name, prop.major, prop.minor, cudaGetErrorString(e));
        cudaGetLastError();
        return NULL;
    }
    ft_backend *be = (ft_backend *)calloc(1, sizeof *be);
    cu_impl *c = (cu_impl *)calloc(1, sizeof *c);
    if (c) c->gemm = (cu_gemm_entry *)calloc(CU_GEMM_CACHE, sizeof *c->gemm);
    if (!be || !c || !c->gemm) {
        if (c) free(c->gemm);
        free(c);
        free(be);
        snprintf(err, err_size, "out of host memory creating the CUDA backend");
        return NULL;
    }
    be->impl = c;
    c->device = device;
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    c->sm_count = prop.multiProcessorCount;
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    c->smem_optin = prop.sharedMemPerBlockOptin;
    cu_set_act_dtype(be, compute_dtype);
    const char *what = NULL;
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) what = "stream";
    else if (cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS) what = "cuBLASLt handle", e = cudaErrorUnknown;
    else if ((e = cudaMalloc(&c->lt_ws, CU_LT_WORKSPACE)) != cudaSuccess) what = "cuBLASLt workspace (32 MiB)";
    else if ((e = cudaMalloc(&c->col, CU_COL_ELEMS * 2)) != cudaSuccess) what = "im2col workspace (64 MiB)";
    else if ((e = cudaMalloc((void **)&c->small, CU_SMALL_FLOATS * sizeof(float))) != cudaSuccess)
        what = "reduction scratch (4 MiB)";
    else if ((e = attention_init(c->smem_optin)) != cudaSuccess) what = "attention kernel shared-memory limits";
    if (what) {
        snprintf(err, err_size, "cannot create the CUDA backend on GPU %d (%s): %s: %s", device, prop.name, what,
                 cudaGetErrorString(e));
        cudaGetLastError();
        cu_destroy(be);
        return NULL;
    }
    c->lt_ws_bytes = CU_LT_WORKSPACE;
    c->col_elems = CU_COL_ELEMS;
    c->small_floats = CU_SMALL_FLOATS;
    const char *ag = getenv("FT_CUDA_ATTENTION_GEMM");
    c->attn_gemm = !(ag && strcmp(ag, "0") == 0);
    /* cuDNN for the VAE (NHWC f16 feature maps); without it the VAE runs on
     * the f32 NCHW ops (im2col convolutions) */
    char dnn_err[256];
    const char *nd = getenv("FT_CUDA_NO_CUDNN");
    int have_dnn = !(nd && nd[0] && strcmp(nd, "0") != 0) && cu_dnn_create(c, dnn_err, sizeof dnn_err);

    be->name = "cuda";
    be->act_size = 2;
    be->destroy = cu_destroy;
    be->set_threads = cu_set_threads;
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->upload = cu_upload;
    be->download = cu_download;
    be->host_alloc = cu_host_alloc;
    be->host_free = cu_host_free;
    be->weight_size = cu_weight_size;
    be->upload_weight = cu_upload_weight;
    be->sync = cu_sync;
    be->host_fn = cu_host_fn;
    const char *ng = getenv("FT_NO_CUDA_GRAPHS");
    if (!(ng && ng[0] && strcmp(ng, "0") != 0)) {
        be->begin_capture = cu_begin_capture;
        be->end_capture = cu_end_capture;
        be->replay = cu_replay;
        be->graph_free = cu_graph_free;
    }
    be->linear = cu_linear;
    be->cast = cu_cast;
    be->timestep_embedding = cu_timestep_embedding;
    be->embedding_lookup = cu_embedding_lookup;
    be->patch_embed = cu_patch_embed;
    be->unpatchify = cu_unpatchify;
    be->layernorm_modulate = cu_layernorm_modulate;
    be->gated_residual = cu_gated_residual;
    be->group_norm = cu_group_norm;
    be->attention = cu_attention;
    be->conv2d = cu_conv2d;
    be->silu = cu_silu;
    be->add = cu_add;
    be->scale = cu_scale;
    be->transpose = cu_transpose;
    be->cfg_combine = cu_cfg_combine;
    be->euler_update = cu_euler_update;
    be->heun_update = cu_heun_update;
    be->randn = cu_randn;
    be->to_rgb8 = cu_to_rgb8;
    be->range_push = cu_range_push;
    be->range_pop = cu_range_pop;
    be->velocity_tail = cu_velocity_tail;
    be->to_pixels = cu_to_pixels; /* output.cu: caller frames and streams */
    be->event_create = cu_event_create;
    be->event_destroy = cu_event_destroy;
    be->event_record = cu_event_record;
    be->stream_wait_event = cu_stream_wait_event;
    be->event_sync = cu_event_sync;
    be->event_query = cu_event_query;
    be->set_act_dtype = cu_set_act_dtype;
    if (have_dnn) {
        be->upload_conv_weight = cu_upload_conv_weight;
        be->fm_from_nchw = cu_fm_from_nchw;
        be->fm_to_nchw = cu_fm_to_nchw;
        be->fm_conv_workspace = cu_fm_conv_workspace;
        be->fm_conv = cu_fm_conv;
        be->fm_group_norm = cu_fm_group_norm;
        be->fm_add = cu_fm_add;
    }
    return be;
}
