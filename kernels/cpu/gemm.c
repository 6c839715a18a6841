/* kernels/cpu/gemm.c — linear layers (OpenBLAS sgemm + fused epilogue) and casts. */
#include <math.h>
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"
#include "vec_math.h"

/* Up to GEMM_MAX_PANELS column panels, at least GEMM_MIN_PANEL wide (a multiple of 16). */
#define GEMM_MAX_PANELS 16
#define GEMM_MIN_PANEL 32
#define GEMM_PAR_MIN_FLOPS 2e5

static int gemm_panel_width(int N) {
    int w = (N + GEMM_MAX_PANELS - 1) / GEMM_MAX_PANELS;
    w = (w + 15) / 16 * 16;
    return w < GEMM_MIN_PANEL ? GEMM_MIN_PANEL : w;
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
    /* Column panels of a width that depends on the shape only, each one single-threaded sgemm call (OpenBLAS runs
     * with one thread): the threads are this backend's OpenMP team, so no second pool waits or spins, and the
     * calls, hence every output value, are the same for any thread count. */
    int width = gemm_panel_width(N);
    int panels = (N + width - 1) / width;
    int par = (double)M * N * K > GEMM_PAR_MIN_FLOPS && panels > 1;
#pragma omp parallel for schedule(static) if (par)
    for (int p = 0; p < panels; p++) {
        int n0 = p * width, nw = N - n0 < width ? N - n0 : width;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, nw, K, 1.0f, x, K, w + (size_t)n0 * K, K, 0.0f,
                    y + n0, N);
    }
    if (!bias && epi == FT_EPI_NONE) return;
#pragma omp parallel for schedule(static) if ((size_t)M * N > CPU_PAR_MIN)
    for (int m = 0; m < M; m++) epilogue_row(y + (size_t)m * N, bias, N, epi);
}

void cpu_cast(ft_backend *be, void *dst, ft_buf_type dst_type, const void *src, ft_buf_type src_type,
              size_t n) {
    (void)be;
    (void)dst_type;
    (void)src_type;
    if (dst != src) memmove(dst, src, n * sizeof(float));
}
