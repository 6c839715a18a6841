/* kernels/cuda/fmap.cu — VAE feature maps in act NHWC: the layout changes at
 * the decoder's ends, the residual add of the attention block, and the
 * nearest-2x upsample in front of an upsampler conv.
 *
 * Reference: the f32 NCHW ops of kernels/cpu (scale, add, conv2d's up2x). A
 * feature map is [N, S, S, C] act values: channels innermost, which is what
 * cuDNN's tensor-core convolutions read and what the mid-block attention's
 * GEMMs take as token rows without a transpose. */
#include "fmap.cuh"

#define FM_THREADS 256

static unsigned fm_blocks(size_t n) {
    unsigned b = cu_blocks(n, FM_THREADS);
    return b > 65536u ? 65536u : b;
}

/* y[n, p, c] = act(x[n, c, p] * scale): one output element per thread (writes
 * coalesced, reads strided by the plane). */
template <typename T> __global__ void fm_from_nchw_kernel(T *y, const float *x, int C, size_t HW, size_t total, float scale) {
    CU_FOR(i, total) {
        int c = (int)(i % (size_t)C);
        size_t p = (i / (size_t)C) % HW, n = i / ((size_t)C * HW);
        y[i] = f_to_act<T>(__fmul_rn(x[(n * C + c) * HW + p], scale));
    }
}

template <typename T> __global__ void fm_to_nchw_kernel(float *y, const T *x, int C, size_t HW, size_t total) {
    CU_FOR(i, total) {
        size_t p = i % HW, c = (i / HW) % (size_t)C, n = i / ((size_t)C * HW);
        y[i] = act_to_f<T>(x[(n * HW + p) * C + c]);
    }
}

template <typename T> __global__ void fm_add_kernel(T *y, const T *a, const T *b, size_t n) {
    CU_FOR(i, n) y[i] = f_to_act<T>(__fadd_rn(act_to_f<T>(a[i]), act_to_f<T>(b[i])));
}

/* y[n, Y, X, :] = x[n, Y/2, X/2, :], 8 channels (16 bytes) per thread. */
__global__ void fm_upsample2x_kernel(uint4 *y, const uint4 *x, int S, int C8, size_t total) {
    CU_FOR(i, total) {
        int c = (int)(i % (size_t)C8);
        size_t rest = i / (size_t)C8;
        int X = (int)(rest % (size_t)(2 * S)), Y = (int)(rest / (size_t)(2 * S) % (size_t)(2 * S));
        size_t n = rest / ((size_t)4 * S * S);
        y[i] = x[((n * S + (size_t)(Y >> 1)) * S + (size_t)(X >> 1)) * C8 + c];
    }
}

/* The same for any C, one act element per thread. */
template <typename T> __global__ void fm_upsample2x_any_kernel(T *y, const T *x, int S, int C, size_t total) {
    CU_FOR(i, total) {
        int c = (int)(i % (size_t)C);
        size_t rest = i / (size_t)C;
        int X = (int)(rest % (size_t)(2 * S)), Y = (int)(rest / (size_t)(2 * S) % (size_t)(2 * S));
        size_t n = rest / ((size_t)4 * S * S);
        y[i] = x[((n * S + (size_t)(Y >> 1)) * S + (size_t)(X >> 1)) * C + c];
    }
}

cudaError_t launch_fm_from_nchw(void *y, const float *x, int N, int C, int S, float scale, ft_dtype act,
                                cudaStream_t st) {
    size_t HW = (size_t)S * S, total = (size_t)N * C * HW;
    if (!total) return cudaSuccess;
    CU_ACT_DISPATCH(act, FT_LAUNCH(fm_blocks(total), FM_THREADS, 0, st, fm_from_nchw_kernel<T>)((T *)y, x, C, HW, total,
                                                                                                scale));
    return cudaGetLastError();
}

cudaError_t launch_fm_to_nchw(float *y, const void *x, int N, int C, int S, ft_dtype act, cudaStream_t st) {
    size_t HW = (size_t)S * S, total = (size_t)N * C * HW;
    if (!total) return cudaSuccess;
    CU_ACT_DISPATCH(act, FT_LAUNCH(fm_blocks(total), FM_THREADS, 0, st, fm_to_nchw_kernel<T>)(y, (const T *)x, C, HW,
                                                                                              total));
    return cudaGetLastError();
}

cudaError_t launch_fm_add(void *y, const void *a, const void *b, size_t n, ft_dtype act, cudaStream_t st) {
    if (!n) return cudaSuccess;
    CU_ACT_DISPATCH(act, FT_LAUNCH(fm_blocks(n), FM_THREADS, 0, st, fm_add_kernel<T>)((T *)y, (const T *)a,
                                                                                      (const T *)b, n));
    return cudaGetLastError();
}

cudaError_t launch_fm_upsample2x(void *y, const void *x, int N, int S, int C, ft_dtype act, cudaStream_t st) {
    size_t total = (size_t)N * 4 * S * S * C;
    if (!total) return cudaSuccess;
    if (C % 8 == 0 && !(((uintptr_t)x | (uintptr_t)y) & 15)) {
        size_t t8 = total / 8;
        FT_LAUNCH(fm_blocks(t8), FM_THREADS, 0, st, fm_upsample2x_kernel)((uint4 *)y, (const uint4 *)x, S, C / 8, t8);
    } else {
        CU_ACT_DISPATCH(act, FT_LAUNCH(fm_blocks(total), FM_THREADS, 0, st, fm_upsample2x_any_kernel<T>)(
                                 (T *)y, (const T *)x, S, C, total));
    }
    return cudaGetLastError();
}

/* ---- backend ops ---- */

#define FM_OP(call)                    \
    do {                               \
        if (!cu_enter(be)) return;     \
        CU_CHECK(be, call);            \
    } while (0)

void cu_fm_from_nchw(ft_backend *be, void *y, const float *x, int N, int C, int S, float scale) {
    FM_OP(launch_fm_from_nchw(y, x, N, C, S, scale, cu_of(be)->act, cu_of(be)->stream));
}

void cu_fm_to_nchw(ft_backend *be, float *y, const void *x, int N, int C, int S) {
    FM_OP(launch_fm_to_nchw(y, x, N, C, S, cu_of(be)->act, cu_of(be)->stream));
}

void cu_fm_add(ft_backend *be, void *y, const void *a, const void *b, size_t n) {
    FM_OP(launch_fm_add(y, a, b, n, cu_of(be)->act, cu_of(be)->stream));
}
