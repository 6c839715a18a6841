/* kernels/cpu/conv2d.c — 2-D convolution (stride 1, zero padding, optional
 * fused nearest 2x upsample of the input) as chunked im2col + sgemm. */
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"

void cpu_conv2d(ft_backend *be, float *y, const float *x, const void *w_, const float *bias, int N, int Cin,
                int S, int Cout, int k, int pad, int up2x) {
    const float *w = w_;
    int Si = up2x ? 2 * S : S;      /* side of the (virtually) upsampled input */
    int So = Si + 2 * pad - k + 1;  /* output side */
    size_t K = (size_t)Cin * k * k;
    size_t out_plane = (size_t)So * So;
    if (k == 1 && pad == 0 && !up2x) {
        for (int n = 0; n < N; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)out_plane, Cin, 1.0f, w, Cin,
                        x + (size_t)n * Cin * out_plane, (int)out_plane, 0.0f, y + (size_t)n * Cout * out_plane,
                        (int)out_plane);
    } else {
        size_t scratch_floats;
        float *col = cpu_scratch(be, &scratch_floats);
        size_t chunk = scratch_floats / K; /* output pixels per im2col chunk */
        if (chunk < 1) {
            ft_backend_fail(be, "conv2d: %zu-element filter exceeds the CPU scratch", K);
            return;
        }
        if (chunk > out_plane) chunk = out_plane;
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * Cin * S * S;
            float *yn = y + (size_t)n * Cout * out_plane;
            for (size_t p0 = 0; p0 < out_plane; p0 += chunk) {
                size_t np = out_plane - p0 < chunk ? out_plane - p0 : chunk;
#pragma omp parallel for schedule(static)
                for (size_t r = 0; r < K; r++) {
                    int ci = (int)(r / (size_t)(k * k)), ki = (int)(r / k % k), kj = (int)(r % k);
                    const float *plane = xn + (size_t)ci * S * S;
                    float *dst = col + r * np;
                    for (size_t pp = 0; pp < np; pp++) {
                        size_t pix = p0 + pp;
                        int oy = (int)(pix / So), ox = (int)(pix % So);
                        int iy = oy + ki - pad, ix = ox + kj - pad;
                        float val = 0.0f;
                        if (iy >= 0 && iy < Si && ix >= 0 && ix < Si)
                            val = up2x ? plane[(size_t)(iy >> 1) * S + (ix >> 1)] : plane[(size_t)iy * S + ix];
                        dst[pp] = val;
                    }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)np, (int)K, 1.0f, w, (int)K, col,
                            (int)np, 0.0f, yn + p0, (int)out_plane);
            }
        }
    }
    if (!bias) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Cout; co++) {
            float *yc = y + ((size_t)n * Cout + co) * out_plane;
            for (size_t i = 0; i < out_plane; i++) yc[i] += bias[co];
        }
}
