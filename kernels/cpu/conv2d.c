/* kernels/cpu/conv2d.c — 2-D convolution (stride 1, zero padding, optional
 * fused nearest 2x upsample of the input).
 *
 * The main paths use "shifted GEMMs" over a zero-padded copy of the input: the
 * padded (and, with up2x, upsampled) images of a batch are stacked into one
 * tall image per channel, rows Wp = Si + 2 pad wide. Output row q of the
 * stack, computed over all Wp columns ("wide" output), is then
 *     wide[:, q*Wp + x] = sum over taps (ky, kx) of W_tap [Cout, Cin] . band[:, (q+ky)*Wp + x + kx]
 * i.e. a GEMM whose B operand is the padded band shifted by ky*Wp + kx
 * (channel stride = the band's plane). Columns x >= So and the rows
 * straddling two images are garbage and are dropped when the wide output is
 * copied out (with the bias) into y. Compared with im2col this never
 * materialises the k*k-times larger column matrix: the extra work is one
 * padded copy of the input and one copy of the output. Long stacks are
 * processed in bands of output rows that fit the backend scratch.
 *
 *  - 3x3 pad 1 (the SD-VAE decoder's convolutions) go first to the
 *    Winograd F(2x2, 3x3) path (conv_winograd.c: 2.25x less arithmetic, on
 *    the micro-kernels below; FT_CPU_WINOGRAD=0 turns it off);
 *  - conv_packed: one GEMM over K' = k*k*Cin with own AVX-512 (or AVX2)
 *    micro-kernels and OpenMP tasks (x86-64 with GCC; see cpu_conv_direct_kernel);
 *  - conv_shifted: k*k OpenBLAS sgemm terms summed per output tile (cpu_sgemm_sum);
 *  - conv_im2col: im2col + sgemm, for layers too big for the scratch;
 *  - 1x1 without padding on the OpenBLAS paths: one sgemm per image on the
 *    NCHW data. */
#include <stdio.h>
#include <string.h>

#include "gemm_kernels.h"
#include "cpu_ops.h"
#include "cpu_simd.h"

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
            cpu_sgemm_sum(be, 0, Cout, (int)np, (int)K, 1.0f, w, (int)K, 0, col, (int)np, NULL, 1, yn + p0,
                          (int)out_plane);
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

/* k*k OpenBLAS GEMMs; returns 0 when the layer does not fit the scratch this way. */
static int conv_shifted(ft_backend *be, float *y, const float *x, const float *w, const float *bias, int N, int Cin,
                        int S, int Cout, int k, int pad, int up2x, float *scratch, size_t scratch_floats) {
    int Si = up2x ? 2 * S : S;
    int Wp = Si + 2 * pad, Hp = Wp;
    int So = Wp - k + 1;
    int taps = k * k;
    size_t wsize = (size_t)taps * Cout * Cin;
    size_t b_off[64]; /* tap t reads the band shifted by ky * Wp + kx */
    if (taps > 64) return 0;
    for (int t = 0; t < taps; t++) b_off[t] = (size_t)(t / k) * Wp + t % k;
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
        cpu_sgemm_sum(be, 0, Cout, ncols, Cin, 1.0f, wt, Cin, (size_t)Cout * Cin, band, (int)cs, b_off, taps, wide,
                      ncols);
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

/* ---- own GEMM with AVX-512 / AVX2 micro-kernels (x86-64, GCC) ----
 * The shifted-GEMM formulation of conv_shifted as one GEMM with K' =
 * k*k*Cin (k index = tap * Cin + ci) whose B rows are the shifted band rows,
 * read in place (no B packing: a micro-tile reads NR consecutive floats of
 * each of its KC rows, and that KC x NR block stays in L1 while it is reused
 * for every A panel). A (the weights) is packed once per call into MR-row
 * panels [Cout_pad/MR][K'][MR] (zero rows past Cout). An MR x NR register
 * tile of the wide output accumulates over each KC block of one tap. Tasks
 * (NC-column blocks, split by rows when there are few) run on OpenMP
 * threads; OpenBLAS is not involved, so its thread pool never competes with
 * OpenMP's. See cpu_conv_direct_kernel for which path runs where. */
#ifdef CPU_GEMM_KERNELS
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

/* 8 x 48 tile: 24 zmm accumulators, B rows as 3 zmm, A broadcast. */
#define AVX512_ROW(r)                                   \
    {                                                   \
        __m512 a_ = _mm512_set1_ps(a[r]);               \
        c##r##0 = _mm512_fmadd_ps(a_, b0, c##r##0);     \
        c##r##1 = _mm512_fmadd_ps(a_, b1, c##r##1);     \
        c##r##2 = _mm512_fmadd_ps(a_, b2, c##r##2);     \
    }
#define AVX512_LOAD(r)                                                      \
    __m512 c##r##0 = acc ? _mm512_loadu_ps(c + r * ldc) : _mm512_setzero_ps(),       \
           c##r##1 = acc ? _mm512_loadu_ps(c + r * ldc + 16) : _mm512_setzero_ps(),  \
           c##r##2 = acc ? _mm512_loadu_ps(c + r * ldc + 32) : _mm512_setzero_ps();
#define AVX512_STORE(r)                              \
    _mm512_storeu_ps(c + r * ldc, c##r##0);          \
    _mm512_storeu_ps(c + r * ldc + 16, c##r##1);     \
    _mm512_storeu_ps(c + r * ldc + 32, c##r##2);

__attribute__((target("avx512f"))) static void uk_avx512_8x48(int kc, const float *a, const float *b, size_t ldb,
                                                              float *c, size_t ldc, int acc) {
    AVX512_LOAD(0) AVX512_LOAD(1) AVX512_LOAD(2) AVX512_LOAD(3)
    AVX512_LOAD(4) AVX512_LOAD(5) AVX512_LOAD(6) AVX512_LOAD(7)
    for (int k = 0; k < kc; k++, a += 8, b += ldb) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32);
        AVX512_ROW(0) AVX512_ROW(1) AVX512_ROW(2) AVX512_ROW(3)
        AVX512_ROW(4) AVX512_ROW(5) AVX512_ROW(6) AVX512_ROW(7)
    }
    AVX512_STORE(0) AVX512_STORE(1) AVX512_STORE(2) AVX512_STORE(3)
    AVX512_STORE(4) AVX512_STORE(5) AVX512_STORE(6) AVX512_STORE(7)
}

/* 4 x 24 tile: 12 ymm accumulators, B rows as 3 ymm, A broadcast (row r's value for this k at ap). */
#define AVX2_ROW_AT(r, ap)                              \
    {                                                   \
        __m256 a_ = _mm256_broadcast_ss(ap);            \
        c##r##0 = _mm256_fmadd_ps(a_, b0, c##r##0);     \
        c##r##1 = _mm256_fmadd_ps(a_, b1, c##r##1);     \
        c##r##2 = _mm256_fmadd_ps(a_, b2, c##r##2);     \
    }
#define AVX2_ROW(r) AVX2_ROW_AT(r, a + r)
#define AVX2_LOAD(r)                                                        \
    __m256 c##r##0 = acc ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps(),        \
           c##r##1 = acc ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps(),    \
           c##r##2 = acc ? _mm256_loadu_ps(c + r * ldc + 16) : _mm256_setzero_ps();
#define AVX2_STORE(r)                                \
    _mm256_storeu_ps(c + r * ldc, c##r##0);          \
    _mm256_storeu_ps(c + r * ldc + 8, c##r##1);      \
    _mm256_storeu_ps(c + r * ldc + 16, c##r##2);

__attribute__((target("avx2,fma"))) static void uk_avx2_4x24(int kc, const float *a, const float *b, size_t ldb,
                                                             float *c, size_t ldc, int acc) {
    AVX2_LOAD(0) AVX2_LOAD(1) AVX2_LOAD(2) AVX2_LOAD(3)
    for (int k = 0; k < kc; k++, a += 4, b += ldb) {
        _mm_prefetch((const char *)(a + 64), _MM_HINT_T0);
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16);
        AVX2_ROW(0) AVX2_ROW(1) AVX2_ROW(2) AVX2_ROW(3)
    }
    AVX2_STORE(0) AVX2_STORE(1) AVX2_STORE(2) AVX2_STORE(3)
}

/* The same tile with A read in place: row r at a + r * lda, its k values consecutive. */
__attribute__((target("avx2,fma"))) static void uk_avx2_4x24_rows(int kc, const float *a, size_t lda, const float *b,
                                                                  size_t ldb, float *c, size_t ldc, int acc) {
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    AVX2_LOAD(0) AVX2_LOAD(1) AVX2_LOAD(2) AVX2_LOAD(3)
    for (int k = 0; k < kc; k++, b += ldb) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16);
        AVX2_ROW_AT(0, a0 + k) AVX2_ROW_AT(1, a1 + k) AVX2_ROW_AT(2, a2 + k) AVX2_ROW_AT(3, a3 + k)
    }
    AVX2_STORE(0) AVX2_STORE(1) AVX2_STORE(2) AVX2_STORE(3)
}

/* The 8 x 48 tile in plain C, one fused multiply-add chain per output in k order as in the AVX-512 kernel, so the
 * same bits: FT_CPU_CONV=ref8x48 runs every user of the 8 x 48 layouts (8-row panels, 48-column blocks and
 * weight panels, 48-query attention blocks) on any AVX2 + FMA CPU, which is how the tests check those layouts on
 * machines without AVX-512 (and the AVX-512 kernel against it on machines with it). Slow; not for use. */
__attribute__((target("avx2,fma"))) static void uk_ref_8x48(int kc, const float *a, const float *b, size_t ldb,
                                                           float *c, size_t ldc, int acc) {
    for (int r = 0; r < 8; r++)
        for (int j = 0; j < 48; j++) {
            float s = acc ? c[r * ldc + j] : 0.0f;
            for (int k = 0; k < kc; k++) s = __builtin_fmaf(a[(size_t)k * 8 + r], b[(size_t)k * ldb + j], s);
            c[r * ldc + j] = s;
        }
}

static const conv_kernel k_avx512 = {"own AVX-512 8x48 micro-kernel", 8, 48, uk_avx512_8x48, NULL};
static const conv_kernel k_avx2 = {"own AVX2 4x24 micro-kernel", 4, 24, uk_avx2_4x24, uk_avx2_4x24_rows};
static const conv_kernel k_ref8x48 = {"plain C 8x48 reference micro-kernel (FT_CPU_CONV=ref8x48)", 8, 48, uk_ref_8x48,
                                      NULL};

/* The best micro-kernel this CPU and OS enable (NULL: neither AVX-512 nor AVX2+FMA), or the one FT_CPU_CONV
 * forces: avx2, ref8x48 (both need AVX2 + FMA), blas (none); read per call: tests, benchmarks. */
const conv_kernel *cpu_conv_best_kernel(void) {
    const char *force = getenv("FT_CPU_CONV");
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (force && !strcmp(force, "blas")) return NULL;
    if (force && !strcmp(force, "avx2")) return has2 ? &k_avx2 : NULL;
    if (force && !strcmp(force, "ref8x48")) return has2 ? &k_ref8x48 : NULL;
    return has512 ? &k_avx512 : has2 ? &k_avx2 : NULL;
}

/* The direct path's micro-kernel, NULL for OpenBLAS. AVX-512 CPUs use the own
 * kernel (on a Zen 4 it matched OpenBLAS 0.3.21 on 512-channel layers and was
 * up to 1.35x faster on the 128-channel 256x256 ones, where OpenBLAS's nine
 * K = Cin GEMMs re-stream the output); on AVX2-only CPUs OpenBLAS's Haswell
 * kernel was ~10% faster than the 4x24 one, which stays available
 * (FT_CPU_CONV=avx2). */
const conv_kernel *cpu_conv_direct_kernel(void) {
    const conv_kernel *kn = cpu_conv_best_kernel();
    const char *force = getenv("FT_CPU_CONV");
    return kn == &k_avx2 && !(force && !strcmp(force, "avx2")) ? NULL : kn;
}

/* Own micro-kernel GEMM; returns 0 when the layer does not fit the scratch this way. */
static int conv_packed(const conv_kernel *kn, float *y, const float *x, const float *w, const float *bias, int N,
                       int Cin, int S, int Cout, int k, int pad, int up2x, float *scratch, size_t scratch_floats) {
    const int MR = kn->mr, NR = kn->nr, NC = NR * ((192 + NR - 1) / NR);
    int Si = up2x ? 2 * S : S;
    int Wp = Si + 2 * pad, Hp = Wp;
    int So = Wp - k + 1;
    int taps = k * k, Kp = taps * Cin;
    int Cp = (Cout + MR - 1) / MR * MR; /* rows padded to whole panels */
    int threads = omp_get_max_threads();
    long total_q = (long)N * Hp - (k - 1);
    /* A: Cp * Kp; band: Cin * ((R + k - 1) * Wp + k - 1 + NR), rounded up by < 32; wide: Cp * (R * Wp + NR);
     * 16 floats of alignment slack each */
    size_t fixed = (size_t)Cp * Kp + 16 + (size_t)Cin * ((size_t)(k - 1) * Wp + (k - 1) + NR + 32) + 16 +
                   (size_t)Cp * NR + 16;
    size_t per_row = (size_t)Wp * (Cin + Cp);
    if (scratch_floats < fixed + per_row) return 0;
    long R = (long)((scratch_floats - fixed) / per_row);
    if (R > total_q) R = total_q;
    long n_bands = (total_q + R - 1) / R;
    R = (total_q + n_bands - 1) / n_bands;
    size_t cs = (size_t)(R + k - 1) * Wp + (k - 1) + NR;
    cs = (cs + 15) / 16 * 16;
    if (cs % 1024 / 16 % 2 == 0) cs += 16; /* channel rows spread over the L1 sets */
    size_t ldc = (size_t)R * Wp + NR;
    float *ap = align64(scratch);
    float *band = align64(ap + (size_t)Cp * Kp);
    float *wide = align64(band + (size_t)Cin * cs);
    int off[64 * 64];
    if (taps > (int)(sizeof off / sizeof off[0])) return 0;
    for (int t = 0; t < taps; t++) off[t] = (t / k) * Wp + t % k;
    /* A panels: ap[p][kk][r] = w[p*MR + r][ci][tap], kk = tap * Cin + ci */
#pragma omp parallel for schedule(static) if ((size_t)Cp * Kp > 65536)
    for (int p = 0; p < Cp / MR; p++)
        for (int r = 0; r < MR; r++) {
            int co = p * MR + r;
            float *dst = ap + (size_t)p * Kp * MR + r;
            if (co >= Cout) {
                for (int kk = 0; kk < Kp; kk++) dst[(size_t)kk * MR] = 0.0f;
                continue;
            }
            const float *src = w + (size_t)co * Cin * taps;
            for (int ci = 0; ci < Cin; ci++)
                for (int t = 0; t < taps; t++) dst[((size_t)t * Cin + ci) * MR] = src[(size_t)ci * taps + t];
        }
    int n_panels = Cp / MR;
    for (long q0 = 0; q0 < total_q; q0 += R) {
        int rows = (int)(total_q - q0 < R ? total_q - q0 : R);
        int ncols = rows * Wp, ncols_p = (ncols + NR - 1) / NR * NR;
        fill_band(band, cs, x, N, Cin, S, Si, pad, up2x, Hp, Wp, q0, rows + k - 1);
        int n_jc = (ncols_p + NC - 1) / NC;
        int splits = 1; /* row splits so that every thread has work */
        while (n_jc * splits < 2 * threads && splits < n_panels) splits++;
        int n_tasks = n_jc * splits;
#pragma omp parallel for schedule(dynamic) if (n_tasks > 1 && (size_t)Cp * Kp * ncols > 8000000)
        for (int task = 0; task < n_tasks; task++) {
            int jb = task / splits, sb = task % splits;
            int j0 = jb * NC, nc = ncols_p - j0 < NC ? ncols_p - j0 : NC;
            int p0 = (int)((long)n_panels * sb / splits), p1 = (int)((long)n_panels * (sb + 1) / splits);
            for (int t = 0; t < taps; t++)
                for (int c0 = 0; c0 < Cin; c0 += KC) {
                    int kc = Cin - c0 < KC ? Cin - c0 : KC, k0 = t * Cin + c0;
                    const float *b = band + (size_t)c0 * cs + off[t] + j0;
                    for (int jr = 0; jr < nc; jr += NR)
                        for (int p = p0; p < p1; p++)
                            kn->run(kc, ap + ((size_t)p * Kp + k0) * MR, b + jr, cs,
                                    wide + (size_t)p * MR * ldc + j0 + jr, ldc, k0 > 0);
                }
            /* this block of the wide output is final: copy its valid pixels out (while it is in
             * cache), adding the bias */
            int j1 = j0 + nc < ncols ? j0 + nc : ncols;
            int co1 = p1 * MR < Cout ? p1 * MR : Cout;
            for (int co = p0 * MR; co < co1; co++) {
                float bv = bias ? bias[co] : 0.0f;
                const float *src = wide + (size_t)co * ldc;
                for (int j = j0; j < j1;) {
                    int r = j / Wp, x0 = j % Wp;
                    int x1 = j1 - r * Wp < Wp ? j1 - r * Wp : Wp; /* this stack row's part of the block */
                    long q = q0 + r;
                    int n = (int)(q / Hp), oy = (int)(q % Hp);
                    if (oy < So && x0 < So) {
                        float *dst = y + (((size_t)n * Cout + co) * So + oy) * So;
                        int xe = x1 < So ? x1 : So;
                        for (int i = x0; i < xe; i++) dst[i] = src[(size_t)r * Wp + i] + bv;
                    }
                    j = r * Wp + x1;
                }
            }
        }
    }
    return 1;
}
#endif

const char *cpu_conv_path(void) {
#ifdef CPU_GEMM_KERNELS
    static _Thread_local char path[160];
    const conv_kernel *wk = cpu_conv_winograd_kernel(), *dk = cpu_conv_direct_kernel();
    if (wk) snprintf(path, sizeof path, "Winograd F(2x2,3x3), %s", wk->name);
    if (wk || dk) return wk ? path : dk->name;
#endif
    return "OpenBLAS sgemm (shifted GEMMs)";
}

void cpu_conv2d(ft_backend *be, float *y, const float *x, const void *w_, const float *bias, int N, int Cin,
                int S, int Cout, int k, int pad, int up2x) {
    const float *w = w_;
    int Si = up2x ? 2 * S : S;      /* side of the (virtually) upsampled input */
    int So = Si + 2 * pad - k + 1;  /* output side */
    if (So <= 0 || N <= 0 || Cout <= 0) return;
    size_t out_plane = (size_t)So * So;
#ifdef CPU_GEMM_KERNELS
    size_t scratch_floats;
    float *scratch = cpu_scratch(be, &scratch_floats);
    const conv_kernel *kn = k == 3 && pad == 1 ? cpu_conv_winograd_kernel() : NULL;
    if (kn && cpu_conv_winograd(kn, cpu_threads(be), y, x, w, bias, N, Cin, S, Cout, up2x, scratch, scratch_floats))
        return;
    kn = cpu_conv_direct_kernel();
    if (kn && conv_packed(kn, y, x, w, bias, N, Cin, S, Cout, k, pad, up2x, scratch, scratch_floats)) return;
#endif
    if (k == 1 && pad == 0 && !up2x) {
        for (int n = 0; n < N; n++)
            cpu_sgemm_sum(be, 0, Cout, (int)out_plane, Cin, 1.0f, w, Cin, 0, x + (size_t)n * Cin * out_plane,
                          (int)out_plane, NULL, 1, y + (size_t)n * Cout * out_plane, (int)out_plane);
    } else {
        size_t scratch_floats;
        float *scratch = cpu_scratch(be, &scratch_floats);
        if (conv_shifted(be, y, x, w, bias, N, Cin, S, Cout, k, pad, up2x, scratch, scratch_floats)) return;
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
