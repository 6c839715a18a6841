/*
 * kernels/cuda/common.cuh — shared by every CUDA op family: the backend's
 * private state, error checking, the activation type (bf16 or fp16) and
 * small device helpers.
 *
 * Conventions (after ggml-cuda / llm.c):
 *  - one op family per .cu with a .cuh declaring its launchers; a launcher
 *    takes device pointers, sizes and a cudaStream_t last and returns the
 *    cudaError_t of its launches (cudaGetLastError);
 *  - the backend op (the function stored in ft_backend) wraps the launcher
 *    and turns any error into the backend's sticky error with
 *    ft_backend_fail — library code never exits or aborts;
 *  - nothing here allocates device memory: the backend's fixed workspaces are
 *    made once in cuda_backend.cu, so every op can be captured into a graph.
 */
#ifndef FT_CUDA_COMMON_CUH
#define FT_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../backend.h"

/* ---- launches and shared memory: the forms the CPU emulator can run ----
 * FT_LAUNCH(grid, block, smem, stream, kernel)(args...)   kernel<<<grid, block, smem, stream>>>(args...)
 * FT_SHARED(T, name, [dims]);                               __shared__ T name[dims];
 * FT_DYNAMIC_SHARED(T, name, align);                        extern __shared__ __align__(align) T name[];
 * (kernel last, so template arguments with commas need no parentheses). With
 * nvcc they expand to exactly the CUDA forms; under kernels/emu they become
 * calls into the emulator. */
#ifdef FT_CUDA_EMU
#define FT_LAUNCH(grid, block, smem, stream, ...) \
    ::emu::launch(__VA_ARGS__, #__VA_ARGS__, (grid), (block), (smem), (stream))
#define FT_SHARED(T, name, dims)                                                                       \
    static char name##_emu_key;                                                                         \
    T(&name) dims = *reinterpret_cast<T(*) dims>(::emu::static_shared(&name##_emu_key, sizeof(T dims), \
                                                                        alignof(T)))
#define FT_DYNAMIC_SHARED(T, name, align) T *name = (T *)::emu::dynamic_shared(align)
#else
#define FT_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<(grid), (block), (smem), (stream)>>>
#define FT_SHARED(T, name, dims) __shared__ T name dims
#define FT_DYNAMIC_SHARED(T, name, align) extern __shared__ __align__(align) T name[]
#endif

/* ---- backend state ---- */

#define CU_GEMM_CACHE 512

/* One cuBLASLt problem: descriptors and the algorithm the heuristic chose.
 * Looked up by everything but the pointers (alignments included). */
typedef struct {
    int valid;
    /* key */
    int transa, transb, m, n, k, lda, ldb, ldc;
    int c_type;    /* 0 f32, 1 act */
    int act;       /* the act type (ft_dtype) of the operands and act output */
    int epi;       /* ft_epilogue requested */
    int has_bias;
    int bias_act;  /* the bias is the act copy of an FT_WEIGHT_BIAS (else f32) */
    int align_a, align_b, align_c, align_bias;
    /* value */
    int fused;     /* 1: bias/GELU done by cuBLASLt; 0: by cu_bias_act afterwards */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    size_t workspace;
} cu_gemm_entry;

/* The act copy of an FT_WEIGHT_BIAS vector, found by its f32 pointer. */
typedef struct {
    const void *f32, *act;
} cu_bias_copy;

typedef struct {
    void *p;
    size_t bytes;
} cu_allocation;

typedef struct cu_dnn cu_dnn; /* cuDNN state (conv_cudnn.cu) */

typedef struct {
    int device;
    int cc_major, cc_minor, sm_count;
    char name[256];
    size_t smem_optin; /* max dynamic shared memory per block (opt-in) */
    ft_dtype act;      /* FT_DTYPE_BF16 or FT_DTYPE_F16: the act type of the ops enqueued and weights uploaded
                          now (compute_dtype, or the VAE's f16 inside its scope: set_act_dtype) */
    cudaDataType_t act_cuda;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws;
    size_t lt_ws_bytes;
    void *col; /* im2col workspace of conv2d (act elements) */
    size_t col_elems;
    float *small; /* reduction partials (group_norm) */
    size_t small_floats;
    cu_gemm_entry *gemm; /* CU_GEMM_CACHE entries */
    int gemm_next;       /* round-robin eviction */
    int capturing;
    cu_dnn *dnn;         /* NULL without cuDNN: the VAE then runs on the f32 NCHW ops */
    int attn_gemm;       /* large head dims through cuBLASLt (FT_CUDA_ATTENTION_GEMM=0 turns it off) */
} cu_impl;

static inline cu_impl *cu_of(ft_backend *be) { return (cu_impl *)be->impl; }

/* Load-time helpers of cuda_backend.cu: element i of a host array as f32, the
 * act bits of a float (round to nearest even), a blocking upload. */
float cu_host_to_f32(const void *src, ft_dtype dt, size_t i);
uint16_t cu_host_to_act_bits(float f, ft_dtype act);
ft_status cu_upload_bytes(ft_backend *be, void *dst, const void *src, size_t bytes);

/* ---- errors ---- */

/* Records a failed CUDA call as the backend's sticky error; returns 0 then. */
static inline int cu_check_(ft_backend *be, cudaError_t e, const char *what, const char *file, int line) {
    if (e == cudaSuccess) return 1;
    ft_backend_fail(be, "CUDA error %s (%s) in %s at %s:%d", cudaGetErrorName(e), cudaGetErrorString(e), what, file,
                    line);
    return 0;
}
#define CU_CHECK(be, call) cu_check_((be), (call), #call, __FILE__, __LINE__)

static inline int cublas_check_(ft_backend *be, cublasStatus_t s, const char *what, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return 1;
    ft_backend_fail(be, "cuBLASLt error %d in %s at %s:%d", (int)s, what, file, line);
    return 0;
}
#define CUBLAS_CHECK(be, call) cublas_check_((be), (call), #call, __FILE__, __LINE__)

/* Makes the backend's device current for this thread (cheap when it is). */
static inline int cu_enter(ft_backend *be) {
    int cur = -1;
    cu_impl *c = cu_of(be);
    if (cudaGetDevice(&cur) == cudaSuccess && cur == c->device) return 1;
    return CU_CHECK(be, cudaSetDevice(c->device));
}

/* ---- launch geometry ---- */

static inline unsigned cu_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    if (b > 0x7fffffffu) b = 0x7fffffffu; /* grid-stride loops cover the rest */
    return (unsigned)(b ? b : 1);
}

/* Grid-stride loop over [0, n). */
#define CU_FOR(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n); i += (size_t)gridDim.x * blockDim.x)

/* ---- activation type ---- */

template <typename T> __device__ __forceinline__ float act_to_f(T v);
template <> __device__ __forceinline__ float act_to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float act_to_f<__half>(__half v) { return __half2float(v); }

template <> __device__ __forceinline__ float act_to_f<float>(float v) { return v; } /* f32 storage */

template <typename T> __device__ __forceinline__ T f_to_act(float v);
template <> __device__ __forceinline__ __nv_bfloat16 f_to_act<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half f_to_act<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float f_to_act<float>(float v) { return v; }

/* Two floats -> one 32-bit word of two act values (lo in the low half).
 * Bits move through memcpy (compiled to register moves), never through
 * pointer casts between unrelated types, which C++ leaves undefined. */
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t w;
    memcpy(&w, &v, sizeof w);
    return w;
}
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    uint32_t w;
    memcpy(&w, &v, sizeof w);
    return w;
}

/* An act value from its 16 bits. */
template <typename T> __device__ __forceinline__ T act_from_bits(uint16_t h);
template <> __device__ __forceinline__ __nv_bfloat16 act_from_bits<__nv_bfloat16>(uint16_t h) {
    __nv_bfloat16_raw r;
    r.x = h;
    return __nv_bfloat16(r);
}
template <> __device__ __forceinline__ __half act_from_bits<__half>(uint16_t h) {
    __half_raw r;
    r.x = h;
    return __half(r);
}

/* Four act values <-> four floats (8 bytes). */
template <typename T> __device__ __forceinline__ void unpack4(uint2 w, float f[4]) {
    uint16_t e[4];
    memcpy(e, &w, sizeof e);
    f[0] = act_to_f<T>(act_from_bits<T>(e[0]));
    f[1] = act_to_f<T>(act_from_bits<T>(e[1]));
    f[2] = act_to_f<T>(act_from_bits<T>(e[2]));
    f[3] = act_to_f<T>(act_from_bits<T>(e[3]));
}
template <typename T> __device__ __forceinline__ uint2 pack4(const float f[4]) {
    uint2 w;
    w.x = pack2<T>(f[0], f[1]);
    w.y = pack2<T>(f[2], f[3]);
    return w;
}

/* Runs BODY with T = the backend's act type. */
#define CU_ACT_DISPATCH(act, ...)           \
    do {                                    \
        if ((act) == FT_DTYPE_F16) {        \
            typedef __half T;               \
            __VA_ARGS__;                    \
        } else {                            \
            typedef __nv_bfloat16 T;        \
            __VA_ARGS__;                    \
        }                                   \
    } while (0)

/* ---- warp reductions ---- */

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Largest power of two (<= 256) dividing the address: cuBLASLt alignment. */
static inline int cu_align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 1 && (a % (uintptr_t)al)) al >>= 1;
    return al;
}

#endif /* FT_CUDA_COMMON_CUH */
