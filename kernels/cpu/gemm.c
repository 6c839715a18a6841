/* kernels/cpu/gemm.c — linear layers (OpenBLAS sgemm + fused epilogue) and casts. */
#include <math.h>
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"
#include "vec_math.h"

/* Row blocks: at most GEMM_MAX_BLOCKS, at least GEMM_MIN_ROWS rows (a multiple of 16) unless M is smaller. */
#define GEMM_MAX_BLOCKS 16
#define GEMM_MIN_ROWS 32
#define GEMM_PAR_MIN_FLOPS 2e5

static int gemm_block_rows(int M) {
    int r = (M + GEMM_MAX_BLOCKS - 1) / GEMM_MAX_BLOCKS;
    r = (r + 15) / 16 * 16;
    return r < GEMM_MIN_ROWS ? GEMM_MIN_ROWS : r;
}

/* bias + activation over one output row (vectorised; see vec_math.h). */
CPU_VEC_CLONES static void epilogue_row(float *row, const float *bias, int N, ft_epilogue epi) {
    if (bias)
#pragma omp simd
        for (int n = 0; n < N; n++) row[n] += bias[n];
    if (epi == FT_EPI_GELU_TANH)
#pragma omp simd
        for (int n = 0; n < N; n++) row[n] = vgelu_tanhf(row[n]);
    else if (epi == FT_EPI_SILU)
#pragma omp simd
        for (int n = 0; n < N; n++) row[n] = vsiluf(row[n]);
}

void cpu_linear(ft_backend *be, void *y_, ft_buf_type y_type, const void *x_, const void *w_,
                const float *bias, int M, int N, int K, ft_epilogue epi) {
    (void)be;
    (void)y_type; /* f32 and act are both float32 here */
    float *y = y_;
    const float *x = x_, *w = w_;
    /* Blocks of rows whose height depends on the shape only, each one single-threaded sgemm call (OpenBLAS runs
     * with one thread) followed by its rows' epilogue: the threads are this backend's OpenMP team, so no second
     * pool waits or spins, and the calls are the same for any thread count. A block packs the weights once for
     * its rows; the activations, the wide side, are read once. */
    int rows = gemm_block_rows(M);
    int blocks = (M + rows - 1) / rows;
    int par = (double)M * N * K > GEMM_PAR_MIN_FLOPS && blocks > 1;
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < blocks; b++) {
        int m0 = b * rows, mb = M - m0 < rows ? M - m0 : rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, N, K, 1.0f, x + (size_t)m0 * K, K, w, K, 0.0f,
                    y + (size_t)m0 * N, N);
        if (bias || epi != FT_EPI_NONE)
            for (int m = m0; m < m0 + mb; m++) epilogue_row(y + (size_t)m * N, bias, N, epi);
    }
}

void cpu_cast(ft_backend *be, void *dst, ft_buf_type dst_type, const void *src, ft_buf_type src_type,
              size_t n) {
    (void)be;
    (void)dst_type;
    (void)src_type;
    if (dst != src) memmove(dst, src, n * sizeof(float));
}
