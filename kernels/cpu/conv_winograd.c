/* kernels/cpu/conv_winograd.c — 3x3 convolutions (stride 1, pad 1, optional
 * fused nearest 2x upsample) by Winograd F(2x2, 3x3).
 *
 * Each 2x2 block of outputs ("tile") comes from a 4x4 input patch d:
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A
 * so the 9 multiply-adds per output and input channel become 16 per tile of
 * 4 outputs: 2.25x less arithmetic than the direct conv, which at the SD-VAE
 * decoder's shapes is 95 % of the decode. The products become 16 independent
 * GEMMs (one per element e of the 4x4 transformed tile):
 *     M_e [Cout x tiles] = U_e [Cout x Cin] . V_e [Cin x tiles]
 * run on the direct path's register-tile micro-kernels (gemm_kernels.h).
 *
 * Tiles (over all images) are cut into blocks of NB; a task transforms the
 * input patches of its block (V, all channels), runs the 16 GEMMs into M and
 * transforms M back into its outputs, all in its own slice of the scratch.
 * U is made from the weights at the start of each call (~5 % of an SD-VAE
 * decode at 1 thread; kept per call because U is 16/9 the size of the weights).
 * Every output is the same chain of operations whatever the block size, the
 * thread count or the task that runs it (the micro-kernel sums over Cin in
 * order, lanes never mix), so the result is bit-identical for any thread
 * count. The transforms use only additions and halvings of the weights; the
 * error stays at the level of an fp32 direct conv (tests/test_vae.c checks
 * every shape against a double-precision naive conv at 1e-5 relative L2). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_kernels.h"
#include "vec_math.h"

#ifdef CPU_GEMM_KERNELS
#include <omp.h>

#define WG_BLOCK_TILES 96 /* tiles per task (rounded to the kernel's NR): V and M stay in L2 at 128-256 channels */

/* The kernel, or NULL: FT_CPU_CONV=blas turns Winograd off (the OpenBLAS direct path) and so does
 * FT_CPU_WINOGRAD=0; FT_CPU_CONV=avx2 forces the AVX2 kernel (read per call: tests, benchmarks). */
const conv_kernel *cpu_conv_winograd_kernel(void) {
    const char *off = getenv("FT_CPU_WINOGRAD");
    if (off && !strcmp(off, "0")) return NULL;
    return cpu_conv_best_kernel();
}

/* U_e = (G g G^T)_e, G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1], packed as the micro-kernel's A panels:
 * u[((e * n_panels + p) * Cin + ci) * MR + r] for output channel p * MR + r (zeros past Cout). */
static void transform_weights(float *u, const float *w, int Cin, int Cout, int Cp, int MR, int threads) {
    int n_panels = Cp / MR;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && (size_t)Cp * Cin > 16384)
    for (int p = 0; p < n_panels; p++)
        for (int ci = 0; ci < Cin; ci++)
            for (int r = 0; r < MR; r++) {
                int co = p * MR + r;
                float t[16] = {0};
                if (co < Cout) {
                    const float *g = w + ((size_t)co * Cin + ci) * 9;
                    float gg[4][3]; /* G g */
                    for (int j = 0; j < 3; j++) {
                        gg[0][j] = g[j];
                        gg[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                        gg[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                        gg[3][j] = g[6 + j];
                    }
                    for (int i = 0; i < 4; i++) { /* (G g) G^T */
                        t[4 * i + 0] = gg[i][0];
                        t[4 * i + 1] = 0.5f * (gg[i][0] + gg[i][1] + gg[i][2]);
                        t[4 * i + 2] = 0.5f * (gg[i][0] - gg[i][1] + gg[i][2]);
                        t[4 * i + 3] = gg[i][2];
                    }
                }
                for (int e = 0; e < 16; e++) u[(((size_t)e * n_panels + p) * Cin + ci) * MR + r] = t[e];
            }
}

/* V_e = (B^T d B)_e, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], for cnt tiles side by side. The patch rows
 * come split into even and odd columns: ev[i * stride + j] = d_j(i, 0) (tile j's row i, column 0),
 * od[...] = d_j(i, 1), and d_j(i, 2), d_j(i, 3) are ev / od at j + 1, so every load is unit-stride.
 * Writes v[e * ldv + j]. */
CPU_VEC_CLONES static void transform_patches(float *restrict v, size_t ldv, const float *restrict ev,
                                             const float *restrict od, int stride, int cnt) {
    const float *e0 = ev, *e1 = ev + stride, *e2 = ev + 2 * stride, *e3 = ev + 3 * stride;
    const float *o0 = od, *o1 = od + stride, *o2 = od + 2 * stride, *o3 = od + 3 * stride;
    float *v0 = v, *v1 = v + ldv, *v2 = v + 2 * ldv, *v3 = v + 3 * ldv, *v4 = v + 4 * ldv, *v5 = v + 5 * ldv;
    float *v6 = v + 6 * ldv, *v7 = v + 7 * ldv, *v8 = v + 8 * ldv, *v9 = v + 9 * ldv, *v10 = v + 10 * ldv;
    float *v11 = v + 11 * ldv, *v12 = v + 12 * ldv, *v13 = v + 13 * ldv, *v14 = v + 14 * ldv, *v15 = v + 15 * ldv;
#pragma omp simd
    for (int j = 0; j < cnt; j++) {
        /* d B, row by row (named scalars: gcc keeps them in vector registers) */
#define WG_ROW_B(i)                                                        \
    float h##i##0 = e##i[j] - e##i[j + 1], h##i##1 = o##i[j] + e##i[j + 1], \
          h##i##2 = e##i[j + 1] - o##i[j], h##i##3 = o##i[j] - o##i[j + 1];
        WG_ROW_B(0) WG_ROW_B(1) WG_ROW_B(2) WG_ROW_B(3)
#undef WG_ROW_B
        /* B^T (d B), column by column */
#define WG_COL_B(c, a, b, cc, d)   \
    a[j] = h0##c - h2##c;          \
    b[j] = h1##c + h2##c;          \
    cc[j] = h2##c - h1##c;         \
    d[j] = h1##c - h3##c;
        WG_COL_B(0, v0, v4, v8, v12) WG_COL_B(1, v1, v5, v9, v13)
        WG_COL_B(2, v2, v6, v10, v14) WG_COL_B(3, v3, v7, v11, v15)
#undef WG_COL_B
    }
}

/* Y = A^T M A + bias, A^T = [1 1 1 0; 0 1 -1 -1], for cnt tiles side by side (m[e * ldm + j]); writes the
 * 2 x 2 outputs of tile j at y0[2j], y0[2j + 1] (row 0) and, with two_rows, y1[...] (row 1). Tiles whose
 * second column is past the image (the last one, odd widths) are left to the caller. */
static inline __attribute__((always_inline)) void output_tiles(float *restrict y0, float *restrict y1,
                                                               const float *restrict m, size_t ldm, int cnt,
                                                               float bias, int two_rows) {
    const float *m0 = m, *m1 = m + ldm, *m2 = m + 2 * ldm, *m3 = m + 3 * ldm, *m4 = m + 4 * ldm;
    const float *m5 = m + 5 * ldm, *m6 = m + 6 * ldm, *m7 = m + 7 * ldm, *m8 = m + 8 * ldm, *m9 = m + 9 * ldm;
    const float *m10 = m + 10 * ldm, *m11 = m + 11 * ldm, *m12 = m + 12 * ldm, *m13 = m + 13 * ldm;
    const float *m14 = m + 14 * ldm, *m15 = m + 15 * ldm;
#pragma omp simd
    for (int j = 0; j < cnt; j++) {
        /* A^T M, column by column */
#define WG_COL_A(c, a, b, cc, d)                     \
    float s0##c = a[j] + b[j] + cc[j], s1##c = b[j] - cc[j] - d[j];
        WG_COL_A(0, m0, m4, m8, m12) WG_COL_A(1, m1, m5, m9, m13)
        WG_COL_A(2, m2, m6, m10, m14) WG_COL_A(3, m3, m7, m11, m15)
#undef WG_COL_A
        y0[2 * j] = s00 + s01 + s02 + bias;
        y0[2 * j + 1] = s01 - s02 - s03 + bias;
        if (two_rows) {
            y1[2 * j] = s10 + s11 + s12 + bias;
            y1[2 * j + 1] = s11 - s12 - s13 + bias;
        }
    }
}

CPU_VEC_CLONES static void transform_outputs(float *y0, float *y1, const float *m, size_t ldm, int cnt, float bias) {
    if (y1) output_tiles(y0, y1, m, ldm, cnt, bias, 1);
    else output_tiles(y0, NULL, m, ldm, cnt, bias, 0);
}

typedef struct {
    const conv_kernel *kn;
    const float *x, *bias, *u;
    float *y;
    int N, Cin, S, Si, Cout, Cp, up2x, th; /* th: tiles per image side */
    int nb;                                /* tiles per block */
} wg_layer;

/* Row i of the patches of tiles tx0 .. tx0 + cnt - 2 (cnt: tiles + 1), split into even and odd columns:
 * ev[k] = row[2 (tx0 + k) - 1], od[k] = row[2 (tx0 + k)], zero outside [0, Si); src: the source row (NULL: a
 * row of the padding), read through the nearest 2x upsample when up2x (then ev and od are plain shifted
 * copies). */
CPU_VEC_CLONES static void patch_row(float *restrict ev, float *restrict od, const float *src, int Si, int tx0,
                                     int cnt, int up2x) {
    if (!src) {
        memset(ev, 0, (size_t)cnt * sizeof(float));
        memset(od, 0, (size_t)cnt * sizeof(float));
        return;
    }
    /* in range: even columns 0 <= 2 (tx0 + k) - 1 < Si for k0 <= k < k1, odd ones 2 (tx0 + k) < Si for k < k1o */
    int k0 = tx0 == 0 ? 1 : 0;
    int k1 = Si / 2 + 1 - tx0, k1o = (Si + 1) / 2 - tx0;
    if (k1 > cnt) k1 = cnt;
    if (k1o > cnt) k1o = cnt;
    if (k1o < 0) k1o = 0;
    if (k1 < k0) k1 = k0;
    if (up2x) {
        for (int k = 0; k < k0; k++) ev[k] = 0.0f;
        memcpy(ev + k0, src + tx0 + k0 - 1, (size_t)(k1 - k0) * sizeof(float));
        memcpy(od, src + tx0, (size_t)k1o * sizeof(float));
    } else {
        const float *s = src + 2 * tx0;
        int both = k1 < k1o ? k1 : k1o; /* k0 <= k < both: a whole pair of columns in range */
        if (k0) ev[0] = 0.0f, od[0] = k1o > 0 ? s[0] : 0.0f;
        const float *pair = s + 2 * k0 - 1; /* one pass over the row, split into even / odd (vectorises as such) */
        float *e = ev + k0, *o = od + k0;
#pragma omp simd
        for (int i = 0; i < both - k0; i++) {
            e[i] = pair[2 * i];
            o[i] = pair[2 * i + 1];
        }
        for (int k = both > k0 ? both : k0; k < cnt; k++) {
            ev[k] = k < k1 ? s[2 * k - 1] : 0.0f;
            od[k] = k < k1o ? s[2 * k] : 0.0f;
        }
        return;
    }
    for (int k = k1; k < cnt; k++) ev[k] = 0.0f;
    for (int k = k1o; k < cnt; k++) od[k] = 0.0f;
}

/* One block of tiles [t0, t0 + cnt): input transform into v [16][Cin][nb], 16 GEMMs into m [16][Cp][nb],
 * output transform into y. rows: 8 x (nb + 1) floats. */
static void run_block(const wg_layer *L, long t0, int cnt, float *v, float *m, float *rows) {
    const int nb = L->nb, Cin = L->Cin, Si = L->Si, S = L->S, th = L->th;
    const int stride = nb + 1;
    const size_t ldv = (size_t)Cin * nb; /* floats between the 16 V_e */
    if (cnt < nb)
        for (int e = 0; e < 16; e++)
            for (int c = 0; c < Cin; c++) memset(v + e * ldv + (size_t)c * nb + cnt, 0, (nb - cnt) * sizeof(float));
    /* input transform, a run of tiles of one tile row of one image at a time */
    for (int j0 = 0; j0 < cnt;) {
        long t = t0 + j0;
        int n = (int)(t / ((long)th * th)), ty = (int)(t / th % th), tx0 = (int)(t % th);
        int run = th - tx0 < cnt - j0 ? th - tx0 : cnt - j0;
        for (int c = 0; c < Cin; c++) {
            const float *plane = L->x + ((size_t)n * Cin + c) * S * S;
            for (int i = 0; i < 4; i++) {
                int iy = 2 * ty - 1 + i;
                const float *src = iy < 0 || iy >= Si ? NULL : plane + (size_t)(L->up2x ? iy >> 1 : iy) * S;
                patch_row(rows + (size_t)i * stride, rows + (size_t)(4 + i) * stride, src, Si, tx0, run + 1,
                          L->up2x);
            }
            transform_patches(v + (size_t)c * nb + j0, ldv, rows, rows + (size_t)4 * stride, stride, run);
        }
        j0 += run;
    }
    /* the 16 GEMMs */
    const conv_kernel *kn = L->kn;
    const int MR = kn->mr, NR = kn->nr, n_panels = L->Cp / MR;
    const int ncols = (cnt + NR - 1) / NR * NR;
    const size_t ldm = (size_t)L->Cp * nb;
    for (int e = 0; e < 16; e++)
        for (int c0 = 0; c0 < Cin; c0 += KC) {
            int kc = Cin - c0 < KC ? Cin - c0 : KC;
            const float *b = v + e * ldv + (size_t)c0 * nb;
            for (int jr = 0; jr < ncols; jr += NR)
                for (int p = 0; p < n_panels; p++)
                    kn->run(kc, L->u + (((size_t)e * n_panels + p) * Cin + c0) * MR, b + jr, nb,
                            m + e * ldm + (size_t)p * MR * nb + jr, nb, c0 > 0);
        }
    /* output transform */
    const int So = Si;
    for (int j0 = 0; j0 < cnt;) {
        long t = t0 + j0;
        int n = (int)(t / ((long)th * th)), ty = (int)(t / th % th), tx0 = (int)(t % th);
        int run = th - tx0 < cnt - j0 ? th - tx0 : cnt - j0;
        int oy = 2 * ty;
        int full = run; /* tiles with both columns inside the image */
        if (2 * (tx0 + run) > So) full--;
        for (int co = 0; co < L->Cout; co++) {
            float *y0 = L->y + (((size_t)n * L->Cout + co) * So + oy) * So + 2 * tx0;
            float *y1 = oy + 1 < So ? y0 + So : NULL;
            const float *mc = m + (size_t)co * nb + j0;
            float bv = L->bias ? L->bias[co] : 0.0f;
            transform_outputs(y0, y1, mc, ldm, full, bv);
            if (full < run) { /* the last tile of an odd width: only its first column exists */
                float t0[2], t1[2];
                transform_outputs(t0, t1, mc + full, ldm, 1, bv);
                y0[2 * full] = t0[0];
                if (y1) y1[2 * full] = t1[0];
            }
        }
        j0 += run;
    }
}

int cpu_conv_winograd(const conv_kernel *kn, int threads, float *y, const float *x, const float *w,
                      const float *bias, int N, int Cin, int S, int Cout, int up2x, float *scratch,
                      size_t scratch_floats) {
    const int MR = kn->mr, NR = kn->nr;
    int Si = up2x ? 2 * S : S;
    int th = (Si + 1) / 2;
    long tiles = (long)N * th * th;
    int Cp = (Cout + MR - 1) / MR * MR;
    if (threads < 1) threads = 1;
    /* scratch: U, then per thread V + M + rows for blocks of up to max_panels * NR tiles */
    size_t u_floats = (size_t)16 * Cp * Cin + 16;
    size_t per_panel = (size_t)16 * (Cin + Cp) * NR + 8 * NR; /* V, M and the 8 patch half-rows per NR tiles */
    size_t per_thread_fixed = 8 + 64;                        /* the rows' 8 extra floats, alignment slack */
    if (scratch_floats < u_floats + per_thread_fixed + per_panel) return 0;
    /* fewer threads where the scratch cannot hold a slice for each (16 threads at 512 channels) */
    size_t slots = (scratch_floats - u_floats) / (per_thread_fixed + per_panel);
    if ((size_t)threads > slots) threads = (int)slots;
    long fit = (long)(((scratch_floats - u_floats) / threads - per_thread_fixed) / per_panel);
    long panels = (tiles + NR - 1) / NR;
    long max_panels = WG_BLOCK_TILES / NR > 1 ? WG_BLOCK_TILES / NR : 1;
    if (max_panels > fit) max_panels = fit;
    /* as many tasks as needed, a multiple of the thread count where the tiles allow, then equal blocks */
    long tasks = (panels + max_panels - 1) / max_panels;
    if (panels >= threads) tasks = (tasks + threads - 1) / threads * threads;
    long ppt = (panels + tasks - 1) / tasks;
    int nb = (int)ppt * NR;
    tasks = (tiles + nb - 1) / nb;

    float *u = align64(scratch);
    transform_weights(u, w, Cin, Cout, Cp, MR, threads);
    size_t v_floats = (size_t)16 * Cin * nb, m_floats = (size_t)16 * Cp * nb, r_floats = (size_t)8 * (nb + 1);
    size_t slice = v_floats + m_floats + r_floats + 64;
    float *slices = u + (size_t)16 * Cp * Cin;
    wg_layer L = {kn, x, bias, u, y, N, Cin, S, Si, Cout, Cp, up2x, th, nb};
    if (threads > tasks) threads = (int)tasks;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *mine = slices + (size_t)omp_get_thread_num() * slice;
        float *v = align64(mine), *m = align64(v + v_floats), *rows = align64(m + m_floats);
#pragma omp for schedule(dynamic)
        for (long b = 0; b < tasks; b++) {
            long t0 = b * nb;
            int cnt = (int)(tiles - t0 < nb ? tiles - t0 : nb);
            run_block(&L, t0, cnt, v, m, rows);
        }
    }
    return 1;
}
#endif
