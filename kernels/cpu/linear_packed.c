/* kernels/cpu/linear_packed.c — linear layers (y = x W^T + b) on weights
 * packed once at load, with the own register-tile micro-kernels.
 *
 * OpenBLAS, called per output tile (gemm.c), packs the weight again on every
 * call and zeroes the output before each product (beta = 0); at SiT-S/2 shapes
 * the two were ~8 % of a forward. Here the weight W [N x K] is stored at load
 * in the micro-kernel's B layout, panels of NR output features:
 *     packed[(p * K + k) * NR + j] = W[p * NR + j][k]
 * so a call reads its activations in place (the AVX2 kernel broadcasts from 4
 * rows; the AVX-512 one, and a last partial panel, take MR-row panels packed
 * per task) and the first KC slice writes the output instead of adding to it;
 * bias and activation are applied to each output strip while it is in cache
 * (AVX2 + FMA code, vec_avx2.h). The
 * weight slot of the CPU backend then holds this layout: a process-wide
 * registry lists the regions (upload_linear_weight adds them, the backend's
 * free drops them; one per process because contexts that share a model run
 * its weights on their own backends) and cpu_linear takes this path when a
 * call's W is a chain of them.
 * Weights whose row count is not a multiple of NR stay in the plain layout
 * (OpenBLAS path).
 *
 * Every output is one fmadd chain over k in order (KC slices stored and
 * reloaded exactly), so the result does not depend on the task grid, the
 * thread count or the kernel width (AVX2 4x24 and AVX-512 8x48 give the same
 * bits); with <= 4 rows the same chain is run by a weight-streaming loop. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "cpu_simd.h"
#include "gemm_kernels.h"
#include "vec_avx2.h"
#include "vec_math.h"

/* ---- the registry of packed weights (one per process) ---- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static cpu_packed_region *registry;
static int registry_n, registry_cap;

/* The region that starts at w, -1 for none (the caller holds the lock). */
static int registry_index(const float *w) {
    for (int i = 0; i < registry_n; i++)
        if (registry[i].w == w) return i;
    return -1;
}

ft_status cpu_packed_add(const float *w, int rows, int cols, int nr, const struct conv_kernel *kn) {
    ft_status st = FT_OK;
    pthread_mutex_lock(&registry_lock);
    if (registry_n == registry_cap) {
        int cap = registry_cap ? 2 * registry_cap : 64;
        cpu_packed_region *p = realloc(registry, (size_t)cap * sizeof *p);
        if (p) registry = p, registry_cap = cap;
        else st = FT_ERR_OUT_OF_MEMORY;
    }
    if (st == FT_OK) registry[registry_n++] = (cpu_packed_region){w, rows, cols, nr, kn};
    pthread_mutex_unlock(&registry_lock);
    return st;
}

void cpu_packed_forget(const void *lo, const void *hi) {
    pthread_mutex_lock(&registry_lock);
    int kept = 0;
    for (int i = 0; i < registry_n; i++)
        if (!((const char *)registry[i].w >= (const char *)lo && (const char *)registry[i].w < (const char *)hi))
            registry[kept++] = registry[i];
    registry_n = kept;
    if (!registry_n) free(registry), registry = NULL, registry_cap = 0;
    pthread_mutex_unlock(&registry_lock);
}

int cpu_packed_count(void) {
    pthread_mutex_lock(&registry_lock);
    int n = registry_n;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

int cpu_packed_find(const float *w, int *nr) {
    pthread_mutex_lock(&registry_lock);
    int i = registry_index(w);
    if (i >= 0) *nr = registry[i].nr;
    pthread_mutex_unlock(&registry_lock);
    return i >= 0;
}

#ifdef CPU_GEMM_KERNELS
#include <immintrin.h>
#include <omp.h>

/* k per micro-kernel call: a whole S/2 row. With 128 (a KC x NR weight block in L1) the output tile is stored and
 * reloaded K / 128 times; streaming the panel from L2 instead was faster at every S/2 shape (1 thread, AVX2: fc2
 * 512 x 384 x 1536 at 98 vs 92 GFLOP/s, qkv 93 vs 91) */
#define LP_KC 1536
#define LP_MC_MAX 128      /* rows per task at most */
#define LP_A_FLOATS 196608 /* and at most this many packed floats (768 KB, in L2): 128 rows at K = 1536 */
#define LP_GROUP 8         /* weight panels whose output strip is finished (epilogue included) together */
#define LP_FEW_ROWS 4      /* up to this many rows: the weight-streaming loop */
#define LP_FEW_PANELS 8    /* weight panels per task of the streaming loop */

const char *cpu_linear_path(void) {
    static _Thread_local char path[192];
    const conv_kernel *kn = cpu_linear_kernel();
    if (!kn) return "OpenBLAS sgemm";
    snprintf(path, sizeof path, "%s on weights packed at load (OpenBLAS for weights not in whole %d-row panels)",
             kn->name, kn->nr);
    return path;
}

const conv_kernel *cpu_linear_kernel(void) {
    const char *off = getenv("FT_CPU_LINEAR");
    if (off && !strcmp(off, "blas")) return NULL;
    return cpu_conv_best_kernel();
}

/* The registered regions that make up [w, w + N K): a chain of weights of K columns starting at w (the parts of
 * one weight slot, e.g. the adaLN of every block), the last one possibly cut to a prefix of whole panels. Returns
 * the number of segments (seg[i]: region, seg_rows[i]: rows used), 0 when w is not the start of such a chain;
 * *partial: w lies inside a packed region without being such a chain (a caller error: the plain layout is gone). */
#define LP_MAX_SEGMENTS 256
static int packed_chain(const float *w, int N, int K, cpu_packed_region *seg, int *seg_rows, int *partial) {
    *partial = 0;
    const float *p = w;
    long rows = N;
    int segs = 0;
    pthread_mutex_lock(&registry_lock);
    const cpu_packed_region *r = registry;
    while (rows > 0 && segs < LP_MAX_SEGMENTS) {
        int i = registry_index(p);
        if (i < 0 || r[i].cols != K || (rows < r[i].rows && r[i].nr && rows % r[i].nr)) break;
        seg[segs] = r[i];
        seg_rows[segs++] = rows < r[i].rows ? (int)rows : r[i].rows;
        rows -= r[i].rows;
        p += (size_t)r[i].rows * K;
    }
    if (rows > 0) {
        segs = 0;
        for (int i = 0; i < registry_n; i++)
            if (r[i].nr && w >= r[i].w && w < r[i].w + (size_t)r[i].rows * r[i].cols) *partial = 1;
    }
    pthread_mutex_unlock(&registry_lock);
    return segs;
}

ft_status cpu_upload_linear_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, int rows,
                                   int cols) {
    ft_status st = be->upload_weight(be, dst, src, src_dtype, (size_t)rows * cols, FT_WEIGHT_MATRIX);
    const conv_kernel *kn = cpu_linear_kernel();
    if (st != FT_OK || !kn || rows <= 0 || cols <= 0) return st;
    size_t n = (size_t)rows * cols;
    float *w = dst, *tmp = rows % kn->nr ? NULL : malloc(n * sizeof(float));
    /* a weight that cannot be packed is registered plain, so that a call over a chain of parts finds its rows */
    if (cpu_packed_add(w, rows, cols, tmp ? kn->nr : 0, tmp ? kn : NULL) != FT_OK || !tmp) {
        free(tmp); /* plain layout: OpenBLAS path */
        return FT_OK;
    }
    const int NR = kn->nr;
    for (int p = 0; p < rows / NR; p++)
        for (int j = 0; j < NR; j++)
            for (int k = 0; k < cols; k++) tmp[((size_t)p * cols + k) * NR + j] = w[((size_t)p * NR + j) * cols + k];
    memcpy(w, tmp, n * sizeof(float));
    free(tmp);
    return FT_OK;
}

/* bias + activation over n outputs of a row (the kernels exist only on AVX2 + FMA CPUs; see vec_avx2.h), one
 * loop per (bias, activation) so that the constants stay in registers. */
static inline AVX2_FMA __attribute__((always_inline)) __m256 activate8(__m256 v, ft_epilogue epi) {
    return epi == FT_EPI_GELU_TANH ? vgelu8(v) : epi == FT_EPI_SILU ? vsilu8(v) : v;
}

static inline AVX2_FMA __attribute__((always_inline)) void epilogue_span(float *row, const float *bias, int n8,
                                                                        ft_epilogue epi) {
    if (bias)
        for (int j = 0; j < n8; j += 8)
            _mm256_storeu_ps(row + j, activate8(_mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(bias + j)), epi));
    else
        for (int j = 0; j < n8; j += 8) _mm256_storeu_ps(row + j, activate8(_mm256_loadu_ps(row + j), epi));
}

static AVX2_FMA void epilogue_row(float *row, const float *bias, int n, ft_epilogue epi) {
    int n8 = n / 8 * 8;
    if (epi == FT_EPI_GELU_TANH) epilogue_span(row, bias, n8, FT_EPI_GELU_TANH);
    else if (epi == FT_EPI_SILU) epilogue_span(row, bias, n8, FT_EPI_SILU);
    else epilogue_span(row, bias, n8, FT_EPI_NONE);
    if (n8 < n) { /* outputs are whole panels (multiples of 8): never in practice */
        float tail[8] = {0}, tail_bias[8] = {0};
        memcpy(tail, row + n8, (size_t)(n - n8) * sizeof(float));
        if (bias) memcpy(tail_bias, bias + n8, (size_t)(n - n8) * sizeof(float));
        epilogue_row(tail, bias ? tail_bias : NULL, 8, epi);
        memcpy(row + n8, tail, (size_t)(n - n8) * sizeof(float));
    }
}

/* ---- few rows: stream the packed weight once ---- */

/* y[r][p NR + j] = sum over k of x[r][k] W[p NR + j][k] for the G rows, one fmaf chain per output (all rows at
 * once: the panel is read once and the G NR chains run side by side). */
static inline __attribute__((always_inline)) void few_rows_group(float *y, size_t ldy, const float *x, int K,
                                                                 const float *b, int G, int NR) {
    float acc[LP_FEW_ROWS][48];
    for (int r = 0; r < G; r++)
        for (int j = 0; j < NR; j++) acc[r][j] = 0.0f;
    for (int k = 0; k < K; k++)
        for (int r = 0; r < G; r++) {
            float xv = x[(size_t)r * K + k];
#pragma omp simd
            for (int j = 0; j < NR; j++) acc[r][j] = fmaf(xv, b[(size_t)k * NR + j], acc[r][j]);
        }
    for (int r = 0; r < G; r++) memcpy(y + (size_t)r * ldy, acc[r], (size_t)NR * sizeof(float));
}

static inline __attribute__((always_inline)) void few_rows_panels(float *y, size_t ldy, const float *x, int M,
                                                                  const float *wp, int K, int p0, int p1, int NR) {
    for (int p = p0; p < p1; p++) {
        const float *b = wp + (size_t)p * K * NR;
        float *yp = y + (size_t)p * NR;
        switch (M) { /* constant row counts: the accumulators stay in registers */
        case 1: few_rows_group(yp, ldy, x, K, b, 1, NR); break;
        case 2: few_rows_group(yp, ldy, x, K, b, 2, NR); break;
        case 3: few_rows_group(yp, ldy, x, K, b, 3, NR); break;
        default: few_rows_group(yp, ldy, x, K, b, 4, NR); break;
        }
    }
}

CPU_VEC_CLONES static void few_rows_24(float *y, size_t ldy, const float *x, int M, const float *wp, int K, int p0,
                                       int p1) {
    few_rows_panels(y, ldy, x, M, wp, K, p0, p1, 24);
}

CPU_VEC_CLONES static void few_rows_48(float *y, size_t ldy, const float *x, int M, const float *wp, int K, int p0,
                                       int p1) {
    few_rows_panels(y, ldy, x, M, wp, K, p0, p1, 48);
}

/* ---- the packed GEMM ---- */

/* 4 rows (stride K) x kc values into one 4-row panel, 8 k at a time (a 4 x 8 transpose in registers). */
__attribute__((target("avx2"))) static void pack_panel4_avx2(float *dst, const float *src, int K, int kc) {
    const float *s0 = src, *s1 = src + K, *s2 = src + 2 * (size_t)K, *s3 = src + 3 * (size_t)K;
    int k = 0;
    for (; k + 8 <= kc; k += 8, dst += 32) {
        __m256 r0 = _mm256_loadu_ps(s0 + k), r1 = _mm256_loadu_ps(s1 + k);
        __m256 r2 = _mm256_loadu_ps(s2 + k), r3 = _mm256_loadu_ps(s3 + k);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE); /* k 0|4, 1|5 */
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE); /* k 2|6, 3|7 */
        _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u1, 0x20));
        _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
        _mm256_storeu_ps(dst + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
        _mm256_storeu_ps(dst + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
    }
    for (; k < kc; k++, dst += 4) dst[0] = s0[k], dst[1] = s1[k], dst[2] = s2[k], dst[3] = s3[k];
}

void cpu_pack_rows(float *ap, const float *x, int M, int ldx, int m0, int mc, int k0, int kc, int MR) {
    for (int ir = 0; ir < mc; ir += MR) {
        if (MR == 4 && m0 + ir + 4 <= M) {
            pack_panel4_avx2(ap + (size_t)ir * kc, x + (size_t)(m0 + ir) * ldx + k0, ldx, kc);
            continue;
        }
        for (int r = 0; r < MR; r++) {
            int m = m0 + ir + r;
            float *dst = ap + (size_t)ir * kc + r;
            if (m >= M) {
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR] = 0.0f;
                continue;
            }
            const float *src = x + (size_t)m * ldx + k0;
            for (int k = 0; k < kc; k++) dst[(size_t)k * MR] = src[k];
        }
    }
}

static void packed_gemm(ft_backend *be, const conv_kernel *kn, float *y, size_t ldy, const float *x, const float *wp,
                        const float *bias, int M, int N, int K, ft_epilogue epi) {
    const int MR = kn->mr, NR = kn->nr;
    int threads = cpu_threads(be);
    if ((double)M * N * K < 64.0 * CPU_PAR_MIN) threads = 1; /* waking the team costs more */
    int row_panels = (M + MR - 1) / MR, col_panels = N / NR;
    /* rows per task: the task's packed rows (all of K) stay in L2 */
    int max_rows = LP_A_FLOATS / K < LP_MC_MAX ? LP_A_FLOATS / K : LP_MC_MAX;
    int max_panels = max_rows / MR > 1 ? max_rows / MR : 1;
    int row_tasks = (row_panels + max_panels - 1) / max_panels;
    if (row_panels >= threads) row_tasks = (row_tasks + threads - 1) / threads * threads;
    if (row_tasks > row_panels) row_tasks = row_panels;
    int mc_panels = (row_panels + row_tasks - 1) / row_tasks;
    row_tasks = (row_panels + mc_panels - 1) / mc_panels;
    int col_tasks = 1; /* few row tasks: split the columns too, so every thread has work */
    while (row_tasks * col_tasks < 2 * threads && col_tasks < col_panels) col_tasks++;
    int tasks = row_tasks * col_tasks;
    if (threads > tasks) threads = tasks;
    size_t a_floats = (size_t)mc_panels * MR * K;
    size_t slice = a_floats + (size_t)MR * NR + 32; /* packed rows + an edge tile */
    size_t scratch_floats;
    float *scratch = cpu_scratch(be, &scratch_floats);
    if (scratch_floats < slice * threads) threads = (int)(scratch_floats / slice); /* never at these sizes */
    int epilogue = bias || epi != FT_EPI_NONE;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *ap = scratch + (size_t)omp_get_thread_num() * slice, *edge = ap + a_floats;
#pragma omp for schedule(dynamic)
        for (int t = 0; t < tasks; t++) {
            int rt = t / col_tasks, ct = t % col_tasks;
            int m0 = rt * mc_panels * MR, m1 = m0 + mc_panels * MR < M ? m0 + mc_panels * MR : M;
            int mc = (m1 - m0 + MR - 1) / MR * MR;
            int pj0 = (int)((long)col_panels * ct / col_tasks), pj1 = (int)((long)col_panels * (ct + 1) / col_tasks);
            /* rows read in place (whole panels, when the kernel can), then the packed ones: KC slice after KC
             * slice, slice k0 at ap + pm * k0 */
            int p0 = kn->run_rows ? (m1 - m0) / MR * MR : 0, pm = mc - p0;
            for (int k0 = 0; k0 < K && pm > 0; k0 += LP_KC)
                cpu_pack_rows(ap + (size_t)pm * k0, x, M, K, m0 + p0, pm, k0, K - k0 < LP_KC ? K - k0 : LP_KC, MR);
            /* a group of weight panels at a time: its output strip (mc x LP_GROUP NR) stays in cache over the KC
             * slices and for the epilogue */
            for (int g0 = pj0; g0 < pj1; g0 += LP_GROUP) {
                int g1 = g0 + LP_GROUP < pj1 ? g0 + LP_GROUP : pj1;
                for (int pj = g0; pj < g1; pj++)
                    for (int k0 = 0; k0 < K; k0 += LP_KC) {
                        int kc = K - k0 < LP_KC ? K - k0 : LP_KC;
                        const float *b = wp + ((size_t)pj * K + k0) * NR, *a = ap + (size_t)pm * k0;
                        for (int ir = 0; ir < p0; ir += MR)
                            kn->run_rows(kc, x + (size_t)(m0 + ir) * K + k0, K, b, NR,
                                         y + (size_t)(m0 + ir) * ldy + (size_t)pj * NR, ldy, k0 > 0);
                        for (int ir = p0; ir < mc; ir += MR) {
                            float *c = y + (size_t)(m0 + ir) * ldy + (size_t)pj * NR;
                            const float *ai = a + (size_t)(ir - p0) * kc;
                            int rows = m1 - (m0 + ir) < MR ? m1 - (m0 + ir) : MR;
                            if (rows == MR) {
                                kn->run(kc, ai, b, NR, c, ldy, k0 > 0);
                                continue;
                            }
                            /* the last rows of the matrix: through a full tile (partial sums go in and out exactly) */
                            if (k0 > 0)
                                for (int r = 0; r < rows; r++)
                                    memcpy(edge + r * NR, c + (size_t)r * ldy, NR * sizeof(float));
                            kn->run(kc, ai, b, NR, edge, NR, k0 > 0);
                            for (int r = 0; r < rows; r++) memcpy(c + (size_t)r * ldy, edge + r * NR, NR * sizeof(float));
                        }
                    }
                if (epilogue)
                    for (int m = m0; m < m1; m++)
                        epilogue_row(y + (size_t)m * ldy + (size_t)g0 * NR, bias ? bias + (size_t)g0 * NR : NULL,
                                         (g1 - g0) * NR, epi);
            }
        }
    }
}

static void packed_few_rows(ft_backend *be, const conv_kernel *kn, float *y, size_t ldy, const float *x,
                            const float *wp, const float *bias, int M, int N, int K, ft_epilogue epi) {
    const int NR = kn->nr, panels = N / NR;
    int tasks = (panels + LP_FEW_PANELS - 1) / LP_FEW_PANELS;
    int threads = cpu_threads(be);
    if (threads > tasks) threads = tasks;
    if ((double)N * K < 8.0 * CPU_PAR_MIN) threads = 1;
    int epilogue = bias || epi != FT_EPI_NONE;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int t = 0; t < tasks; t++) {
        int p0 = t * LP_FEW_PANELS, p1 = p0 + LP_FEW_PANELS < panels ? p0 + LP_FEW_PANELS : panels;
        if (NR == 48) few_rows_48(y, ldy, x, M, wp, K, p0, p1);
        else few_rows_24(y, ldy, x, M, wp, K, p0, p1);
        if (epilogue)
            for (int m = 0; m < M; m++)
                epilogue_row(y + (size_t)m * ldy + (size_t)p0 * NR, bias ? bias + (size_t)p0 * NR : NULL,
                                 (p1 - p0) * NR, epi);
    }
}

int cpu_linear_packed(ft_backend *be, float *y, const float *x, const float *w, const float *bias, int M, int N,
                      int K, ft_epilogue epi) {
    cpu_packed_region seg[LP_MAX_SEGMENTS];
    int seg_rows[LP_MAX_SEGMENTS], partial, packed = 0;
    int segs = packed_chain(w, N, K, seg, seg_rows, &partial);
    if (partial) ft_backend_fail(be, "linear: the weight at %p is part of a packed weight (%d x %d)", (void *)w, N, K);
    for (int i = 0; i < segs; i++) packed |= seg[i].nr != 0;
    if (!packed) return partial; /* plain weights: the OpenBLAS path */
    size_t n0 = 0; /* output columns of this segment */
    for (int i = 0; i < segs; n0 += (size_t)seg_rows[i++]) {
        float *ys = y + n0;
        const float *bs = bias ? bias + n0 : NULL;
        const conv_kernel *kn = seg[i].kernel;
        if (!kn) cpu_linear_plain(be, ys, N, x, seg[i].w, bs, M, seg_rows[i], K, epi);
        else if (M <= LP_FEW_ROWS) packed_few_rows(be, kn, ys, N, x, seg[i].w, bs, M, seg_rows[i], K, epi);
        else packed_gemm(be, kn, ys, N, x, seg[i].w, bs, M, seg_rows[i], K, epi);
    }
    return 1;
}

#else /* no own kernels: every weight stays in the plain layout */

const char *cpu_linear_path(void) { return "OpenBLAS sgemm"; }

ft_status cpu_upload_linear_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, int rows,
                                   int cols) {
    return be->upload_weight(be, dst, src, src_dtype, (size_t)rows * cols, FT_WEIGHT_MATRIX);
}

int cpu_linear_packed(ft_backend *be, float *y, const float *x, const float *w, const float *bias, int M, int N,
                      int K, ft_epilogue epi) {
    (void)be, (void)y, (void)x, (void)w, (void)bias, (void)M, (void)N, (void)K, (void)epi;
    return 0;
}
#endif
