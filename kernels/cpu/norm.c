/* kernels/cpu/norm.c — LayerNorm + adaLN modulate, gated residual, GroupNorm. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu_ops.h"
#include "vec_math.h"

/* ---- statistics: float partial sums over blocks of STAT_BLOCK elements
 * (fixed_shifted_sum: vectorised, the same bits at any vector width),
 * accumulated in double (two passes: the mean of x - x[0], then the
 * variance centred on the mean) ---- */
#define STAT_BLOCK 2048

static inline __attribute__((always_inline)) double shifted_sum(const float *x, size_t n, float shift,
                                                                int squares) {
    double total = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += STAT_BLOCK) {
        int m = n - i0 < STAT_BLOCK ? (int)(n - i0) : STAT_BLOCK;
        const float *xs = x + i0;
        total += squares ? fixed_shifted_sum(xs, m, shift, 1) : fixed_shifted_sum(xs, m, shift, 0);
    }
    return total;
}

/* Mean and 1 / sqrt(var + eps) of x[0..count), for x_hat = ((x - *mu) - *resid) * *rstd. Sums of x - x[0]:
 * float partial sums stay accurate when the data sit on a large offset; x - mu is exact for x near mu, and
 * the rounding residual of the mean (*resid = mean - mu) is left to the caller to fold into a shift. */
static inline __attribute__((always_inline)) void moments(const float *x, size_t count, float eps, float *mu,
                                                          double *resid, float *rstd) {
    double mean = (double)x[0] + shifted_sum(x, count, x[0], 0) / (double)count;
    *mu = (float)mean;
    *resid = mean - (double)*mu;
    double var = shifted_sum(x, count, *mu, 1) / (double)count - *resid * *resid;
    if (var < 0) var = 0;
    *rstd = (float)(1.0 / sqrt(var + eps));
}

/* One token: h = LN(x) * (1 + scale) + shift (compiled per SIMD level, see vec_math.h). */
CPU_VEC_CLONES static void ln_mod_row(float *h, const float *x, const float *shift, const float *scale, int D,
                                      float eps) {
    float mu, rstd;
    double resid;
    moments(x, (size_t)D, eps, &mu, &resid, &rstd);
    float bias = (float)(-resid * rstd);
#pragma omp simd
    for (int d = 0; d < D; d++) h[d] = ((x[d] - mu) * rstd + bias) * (1.0f + scale[d]) + shift[d];
}

/* x += g * a over one token. */
CPU_VEC_CLONES static void gated_add_row(float *x, const float *g, const float *a, int D) {
#pragma omp simd
    for (int d = 0; d < D; d++) x[d] += g[d] * a[d];
}

void cpu_layernorm_modulate(ft_backend *be, void *h_, const float *x, const float *shift, const float *scale,
                            int mod_stride, int N, int T, int D, float eps) {
    (void)be;
    float *h = h_;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * T * D > CPU_PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++) {
            size_t row = ((size_t)n * T + t) * D;
            ln_mod_row(h + row, x + row, shift + (size_t)n * mod_stride, scale + (size_t)n * mod_stride, D, eps);
        }
}

void cpu_gated_residual(ft_backend *be, float *x, const void *a_, const float *gate, void *h_,
                        const float *next_shift, const float *next_scale, int mod_stride, int N, int T, int D,
                        float eps) {
    (void)be;
    const float *a = a_;
    float *h = h_;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * T * D > CPU_PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++) {
            size_t row = ((size_t)n * T + t) * D;
            const float *g = gate + (size_t)n * mod_stride;
            gated_add_row(x + row, g, a + row, D);
            if (h)
                ln_mod_row(h + row, x + row, next_shift + (size_t)n * mod_stride,
                           next_scale + (size_t)n * mod_stride, D, eps);
        }
}

/* ---- GroupNorm (+ SiLU) ----
 * One task per (sample, group). The per-group worker is compiled for AVX-512,
 * AVX2 and baseline x86-64 (picked at load time) when the compiler supports
 * target clones; its loops are written to vectorise: statistics from
 * moments() above, and SiLU with the vectorisable exp of vec_math.h. */
#define GN_CLONES CPU_VEC_CLONES
GN_CLONES static void gn_group(float *y, const float *x, const float *gamma, const float *beta, int cg, int HW,
                               float eps, int silu) {
    float mu, rstd;
    double resid;
    moments(x, (size_t)cg * HW, eps, &mu, &resid, &rstd);
    for (int c = 0; c < cg; c++) {
        float a = rstd * gamma[c], b = (float)(beta[c] - resid * a);
        const float *xc = x + (size_t)c * HW;
        float *yc = y + (size_t)c * HW;
        if (silu) {
#pragma omp simd
            for (int i = 0; i < HW; i++) {
                float v = (xc[i] - mu) * a + b;
                yc[i] = vsiluf(v);
            }
        } else {
#pragma omp simd
            for (int i = 0; i < HW; i++) yc[i] = (xc[i] - mu) * a + b;
        }
    }
}

void cpu_group_norm(ft_backend *be, float *y, const float *x, const float *gamma, const float *beta, int N, int C,
                    int HW, int groups, float eps, int silu) {
    (void)be;
    int cg = C / groups;
    /* small tensors stay on one thread: waking the team costs more than the work */
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW >= 65536)
    for (int n = 0; n < N; n++)
        for (int g = 0; g < groups; g++) {
            size_t off = ((size_t)n * C + (size_t)g * cg) * HW;
            gn_group(y + off, x + off, gamma + (size_t)g * cg, beta + (size_t)g * cg, cg, HW, eps, silu);
        }
}
