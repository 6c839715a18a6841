/* kernels/cpu/conv2d.c — 2-D convolution (stride 1, zero padding, optional
 * fused nearest 2x upsample of the input) on OpenBLAS sgemm.
 *
 * 1x1 without padding: one GEMM per image, straight on the NCHW data.
 *
 * Everything else: "shifted GEMMs" over a zero-padded copy of the input.
 * The padded (and, with up2x, upsampled) images of a batch are stacked into
 * one tall image per channel, rows Wp = Si + 2 pad wide. Output row q of the
 * stack, computed over all Wp columns ("wide" output), is then
 *     wide[:, q*Wp + x] = sum over taps (ky, kx) of W_tap [Cout, Cin] . band[:, (q+ky)*Wp + x + kx]
 * i.e. k*k plain GEMMs whose B operand is the padded band shifted by
 * ky*Wp + kx (channel stride = the band's plane). Columns x >= So and the
 * rows straddling two images are garbage and are dropped when the wide
 * output is copied out (with the bias) into y. Compared with im2col this
 * never materialises the k*k-times larger column matrix: the extra work is
 * one padded copy of the input, one copy of the output and a per-call
 * permutation of the weights into tap-major [k*k, Cout, Cin] order.
 * Long stacks are processed in bands of output rows that fit the backend
 * scratch; when even one row does not fit, the im2col path below is used. */
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"

/* im2col + sgemm, chunked by output pixels (fallback for huge layers). */
static void conv_im2col(ft_backend *be, float *y, const float *x, const float *w, int N, int Cin, int S, int Cout,
                        int k, int pad, int up2x, float *col, size_t scratch_floats) {
    int Si = up2x ? 2 * S : S;
    int So = Si + 2 * pad - k + 1;
    size_t K = (size_t)Cin * k * k;
    size_t out_plane = (size_t)So * So;
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

/* Fills rows [t0, t0 + rows) of the padded stack (all channels) into band;
 * each channel occupies cs floats (rows * Wp, then zeros). */
static void fill_band(float *band, size_t cs, const float *x, int N, int Cin, int S, int Si, int pad, int up2x,
                      int Hp, int Wp, long t0, int rows) {
    (void)N;
#pragma omp parallel for schedule(static) if ((size_t)Cin * rows * Wp > 65536)
    for (int c = 0; c < Cin; c++) {
        float *dst = band + (size_t)c * cs;
        for (int r = 0; r < rows; r++, dst += Wp) {
            long t = t0 + r;
            int n = (int)(t / Hp), iy = (int)(t % Hp) - pad;
            if (iy < 0 || iy >= Si) {
                memset(dst, 0, (size_t)Wp * sizeof(float));
                continue;
            }
            const float *src = x + ((size_t)n * Cin + c) * S * S + (size_t)(up2x ? iy >> 1 : iy) * S;
            memset(dst, 0, (size_t)pad * sizeof(float));
            if (up2x) {
                for (int i = 0; i < S; i++) dst[pad + 2 * i] = dst[pad + 2 * i + 1] = src[i];
            } else {
                memcpy(dst + pad, src, (size_t)S * sizeof(float));
            }
            memset(dst + pad + Si, 0, (size_t)(Wp - pad - Si) * sizeof(float));
        }
        memset(dst, 0, (cs - (size_t)rows * Wp) * sizeof(float));
    }
}

/* Returns 0 when the layer does not fit the scratch this way. */
static int conv_shifted(float *y, const float *x, const float *w, const float *bias, int N, int Cin, int S,
                        int Cout, int k, int pad, int up2x, float *scratch, size_t scratch_floats) {
    int Si = up2x ? 2 * S : S;
    int Wp = Si + 2 * pad, Hp = Wp;
    int So = Wp - k + 1;
    int taps = k * k;
    size_t wsize = (size_t)taps * Cout * Cin;
    long total_q = (long)N * Hp - (k - 1); /* output rows of the stack */
    /* per band of R output rows: Cin * ((R + k - 1) * Wp + k - 1) + Cout * R * Wp floats */
    size_t fixed = wsize + (size_t)Cin * ((size_t)(k - 1) * Wp + (k - 1));
    size_t per_row = (size_t)Wp * (Cin + Cout);
    if (scratch_floats < fixed + per_row) return 0;
    long R = (long)((scratch_floats - fixed) / per_row);
    if (R > total_q) R = total_q;
    /* equal bands (no tiny tail) */
    long n_bands = (total_q + R - 1) / R;
    R = (total_q + n_bands - 1) / n_bands;
    float *wt = scratch, *band = scratch + wsize;
    size_t cs = (size_t)(R + k - 1) * Wp + (k - 1);
    float *wide = band + (size_t)Cin * cs;
    /* weights [Cout, Cin, k, k] -> tap-major [k*k, Cout, Cin] */
#pragma omp parallel for schedule(static) if (wsize > 65536)
    for (int co = 0; co < Cout; co++)
        for (int ci = 0; ci < Cin; ci++) {
            const float *src = w + ((size_t)co * Cin + ci) * taps;
            for (int t = 0; t < taps; t++) wt[((size_t)t * Cout + co) * Cin + ci] = src[t];
        }
    for (long q0 = 0; q0 < total_q; q0 += R) {
        int rows = (int)(total_q - q0 < R ? total_q - q0 : R);
        int ncols = rows * Wp;
        fill_band(band, cs, x, N, Cin, S, Si, pad, up2x, Hp, Wp, q0, rows + k - 1);
        for (int t = 0; t < taps; t++) {
            int ky = t / k, kx = t % k;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, ncols, Cin, 1.0f, wt + (size_t)t * Cout * Cin,
                        Cin, band + (size_t)ky * Wp + kx, (int)cs, t ? 1.0f : 0.0f, wide, ncols);
        }
        /* copy the valid rows/columns out, adding the bias */
#pragma omp parallel for schedule(static) if ((size_t)Cout * ncols > 65536)
        for (int co = 0; co < Cout; co++) {
            float b = bias ? bias[co] : 0.0f;
            const float *src = wide + (size_t)co * ncols;
            for (int r = 0; r < rows; r++) {
                long q = q0 + r;
                int n = (int)(q / Hp), oy = (int)(q % Hp);
                if (oy >= So) continue;
                float *dst = y + (((size_t)n * Cout + co) * So + oy) * So;
                const float *s = src + (size_t)r * Wp;
                for (int i = 0; i < So; i++) dst[i] = s[i] + b;
            }
        }
    }
    return 1;
}

void cpu_conv2d(ft_backend *be, float *y, const float *x, const void *w_, const float *bias, int N, int Cin,
                int S, int Cout, int k, int pad, int up2x) {
    const float *w = w_;
    int Si = up2x ? 2 * S : S;      /* side of the (virtually) upsampled input */
    int So = Si + 2 * pad - k + 1;  /* output side */
    if (So <= 0 || N <= 0 || Cout <= 0) return;
    size_t out_plane = (size_t)So * So;
    if (k == 1 && pad == 0 && !up2x) {
        for (int n = 0; n < N; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)out_plane, Cin, 1.0f, w, Cin,
                        x + (size_t)n * Cin * out_plane, (int)out_plane, 0.0f, y + (size_t)n * Cout * out_plane,
                        (int)out_plane);
    } else {
        size_t scratch_floats;
        float *scratch = cpu_scratch(be, &scratch_floats);
        if (conv_shifted(y, x, w, bias, N, Cin, S, Cout, k, pad, up2x, scratch, scratch_floats)) return;
        conv_im2col(be, y, x, w, N, Cin, S, Cout, k, pad, up2x, scratch, scratch_floats);
    }
    if (!bias) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Cout; co++) {
            float *yc = y + ((size_t)n * Cout + co) * out_plane;
            for (size_t i = 0; i < out_plane; i++) yc[i] += bias[co];
        }
}
