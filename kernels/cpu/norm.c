/* kernels/cpu/norm.c — LayerNorm + adaLN modulate, gated residual, GroupNorm. */
#include <math.h>

#include "cpu_ops.h"

/* One token: h = LN(x) * (1 + scale) + shift, statistics in double. */
static void ln_mod_row(float *h, const float *x, const float *shift, const float *scale, int D, float eps) {
    double sum = 0.0;
    for (int d = 0; d < D; d++) sum += x[d];
    double mean = sum / D;
    double var = 0.0;
    for (int d = 0; d < D; d++) {
        double c = x[d] - mean;
        var += c * c;
    }
    var /= D;
    float rstd = (float)(1.0 / sqrt(var + eps));
    float mu = (float)mean;
    for (int d = 0; d < D; d++) h[d] = ((x[d] - mu) * rstd) * (1.0f + scale[d]) + shift[d];
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
            for (int d = 0; d < D; d++) x[row + d] += g[d] * a[row + d];
            if (h)
                ln_mod_row(h + row, x + row, next_shift + (size_t)n * mod_stride,
                           next_scale + (size_t)n * mod_stride, D, eps);
        }
}

void cpu_group_norm(ft_backend *be, float *y, const float *x, const float *gamma, const float *beta, int N, int C,
                    int HW, int groups, float eps, int silu) {
    (void)be;
    int cg = C / groups;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int g = 0; g < groups; g++) {
            const float *xs = x + ((size_t)n * C + (size_t)g * cg) * HW;
            float *ys = y + ((size_t)n * C + (size_t)g * cg) * HW;
            size_t count = (size_t)cg * HW;
            double sum = 0.0;
            for (size_t i = 0; i < count; i++) sum += xs[i];
            double mean = sum / (double)count;
            double var = 0.0;
            for (size_t i = 0; i < count; i++) {
                double c = xs[i] - mean;
                var += c * c;
            }
            var /= (double)count;
            float rstd = (float)(1.0 / sqrt(var + eps));
            float mu = (float)mean;
            for (int c = 0; c < cg; c++) {
                int ch = g * cg + c;
                float ga = gamma[ch], be_ = beta[ch];
                const float *xc = xs + (size_t)c * HW;
                float *yc = ys + (size_t)c * HW;
                for (int i = 0; i < HW; i++) {
                    float v = (xc[i] - mu) * rstd * ga + be_;
                    yc[i] = silu ? v / (1.0f + expf(-v)) : v;
                }
            }
        }
}
