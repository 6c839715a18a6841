/* kernels/cuda/conv2d.cu — VAE convolutions.
 *
 * Reference: kernels/cpu/conv2d.c (chunked im2col + sgemm, then the bias).
 * Here: per image and per chunk of output pixels, im2col_kernel writes the
 * act-typed column matrix into the backend's fixed workspace, then one
 * cuBLASLt GEMM (fp32 accumulate) writes the f32 output directly in NCHW:
 *   column-major Y_n[p, co] (ld = out pixels) = col[p, k] (ld = np) . W[k, co] (ld = K)
 * where W is the stored [Cout, Cin k k] row-major weight. The bias is added
 * afterwards (cuBLASLt's bias epilogue runs along D's rows, i.e. pixels,
 * here). A k = 1, pad 0 conv is the same path (its im2col is the cast).
 * Chunks are multiples of 64 pixels so every GEMM output stays 256-byte
 * aligned. Implicit-GEMM or cuDNN would save the column traffic; see
 * bench/GPU_NOTES.md. */
#include "conv2d.cuh"
#include "elementwise.cuh"
#include "gemm.cuh"

/* Block row k of the column matrix: (ci, ki, kj) once per block, one
 * division per element for the output pixel. */
template <typename T>
__global__ void im2col_rows_kernel(T *col, const float *x, int S, int ksz, int pad, int up2x, size_t p0, int np,
                                   int So) {
    const int k = blockIdx.y, kk = ksz * ksz;
    const int ci = k / kk, r = k - ci * kk, ki = r / ksz, kj = r - ki * ksz;
    const int Si = up2x ? 2 * S : S;
    const float *plane = x + (size_t)ci * S * S;
    T *dst = col + (size_t)k * np;
    for (int pp = blockIdx.x * blockDim.x + threadIdx.x; pp < np; pp += gridDim.x * blockDim.x) {
        size_t pix = p0 + (size_t)pp;
        int oy = (int)(pix / (size_t)So), ox = (int)(pix - (size_t)oy * So);
        int iy = oy + ki - pad, ix = ox + kj - pad;
        float val = 0.0f;
        if (iy >= 0 && iy < Si && ix >= 0 && ix < Si)
            val = up2x ? plane[(size_t)(iy >> 1) * S + (ix >> 1)] : plane[(size_t)iy * S + ix];
        dst[pp] = f_to_act<T>(val);
    }
}

/* Any K (grid-stride over all K * np elements). */
template <typename T>
__global__ void im2col_flat_kernel(T *col, const float *x, int S, int ksz, int pad, int up2x, size_t p0, size_t np,
                                   size_t K) {
    const int Si = up2x ? 2 * S : S;
    const int So = Si + 2 * pad - ksz + 1;
    const int kk = ksz * ksz;
    CU_FOR(idx, K * np) {
        size_t k = idx / np, pp = idx % np;
        size_t pix = p0 + pp;
        int oy = (int)(pix / (size_t)So), ox = (int)(pix % (size_t)So);
        int ci = (int)(k / (size_t)kk), r = (int)(k % (size_t)kk), ki = r / ksz, kj = r % ksz;
        int iy = oy + ki - pad, ix = ox + kj - pad;
        float val = 0.0f;
        if (iy >= 0 && iy < Si && ix >= 0 && ix < Si) {
            const float *plane = x + (size_t)ci * S * S;
            val = up2x ? plane[(size_t)(iy >> 1) * S + (ix >> 1)] : plane[(size_t)iy * S + ix];
        }
        col[idx] = f_to_act<T>(val);
    }
}

cudaError_t launch_im2col(void *col, const float *x, int Cin, int S, int ksz, int pad, int up2x, size_t p0, size_t np,
                          ft_dtype act, cudaStream_t stream) {
    size_t K = (size_t)Cin * ksz * ksz, total = K * np;
    if (!total) return cudaSuccess;
    const int So = (up2x ? 2 * S : S) + 2 * pad - ksz + 1;
    if (K <= 65535 && np <= 0x7fffffffu) {
        size_t bx = (np + 255) / 256;
        dim3 grid((unsigned)(bx < 65535 ? bx : 65535), (unsigned)K);
        CU_ACT_DISPATCH(act, FT_LAUNCH(grid, 256, 0, stream, im2col_rows_kernel<T>)((T *)col, x, S, ksz, pad, up2x, p0,
                                                                             (int)np, So));
    } else {
        unsigned blocks = cu_blocks(total, 256);
        if (blocks > 65536u) blocks = 65536u;
        CU_ACT_DISPATCH(act, FT_LAUNCH(blocks, 256, 0, stream, im2col_flat_kernel<T>)((T *)col, x, S, ksz, pad, up2x, p0,
                                                                               np, K));
    }
    return cudaGetLastError();
}

void cu_conv2d(ft_backend *be, float *y, const float *x, const void *w, const float *bias, int N, int Cin, int S,
               int Cout, int k, int pad, int up2x) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    const int Si = up2x ? 2 * S : S, So = Si + 2 * pad - k + 1;
    if (N <= 0 || Cout <= 0 || So <= 0) return;
    const size_t P = (size_t)So * So, K = (size_t)Cin * k * k;
    if (K > 0x7fffffffu || P > 0x7fffffffu) {
        ft_backend_fail(be, "conv2d: %zu x %zu problem is too large", K, P);
        return;
    }
    size_t chunk = c->col_elems / K;
    if (chunk < P) chunk = chunk >= 64 ? chunk / 64 * 64 : chunk;
    else chunk = P;
    if (!chunk) {
        ft_backend_fail(be, "conv2d: a %zu-element filter exceeds the CUDA im2col workspace (%zu elements)", K,
                        c->col_elems);
        return;
    }
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * Cin * S * S;
        float *yn = y + (size_t)n * Cout * P;
        for (size_t p0 = 0; p0 < P; p0 += chunk) {
            size_t np = P - p0 < chunk ? P - p0 : chunk;
            if (!CU_CHECK(be, launch_im2col(c->col, xn, Cin, S, k, pad, up2x, p0, np, c->act, c->stream))) return;
            cu_matmul(be, 0, 0, (int)np, Cout, (int)K, c->col, (int)np, w, (int)K, yn + p0, (int)P, 0, NULL,
                      FT_EPI_NONE);
            if (be->error[0]) return;
        }
    }
    CU_CHECK(be, launch_channel_bias(y, bias, N, Cout, P, c->stream));
}
