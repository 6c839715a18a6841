/* kernels/cpu/gemm.c — linear layers on plain weights (OpenBLAS sgemm + fused
 * epilogue; weights packed at load go to linear_packed.c first), casts, and
 * the thread-count-invariant OpenBLAS GEMM the other CPU ops use. */
#include <math.h>
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"
#include "vec_math.h"

/* ---- thread-count-invariant GEMM ----
 * A multi-threaded OpenBLAS sgemm partitions the output differently for each
 * thread count, and its edge kernels round differently from its main kernel,
 * so the same product differs in the last bits between 1, 2 and 3 threads
 * (OpenBLAS 0.3.21 on a Zen core: ~10% of the outputs of a 2048x384x128
 * product). So OpenBLAS always runs single-threaded (cpu_backend.c) and the
 * output is cut into a grid of tiles that depends only on the shape: each tile
 * is one sgemm call with the same arguments whatever the thread count, and
 * OpenMP only decides which thread runs which tile. K is never split. The
 * price: each tile packs its operands again (bench/RESULTS.md has the cost). */
#define TILE_M_MIN 256       /* rows of a tile, unless the product has fewer */
#define TILE_N_MIN 512       /* columns of a tile, unless the product has fewer */
#define TILE_WORK (1L << 27) /* multiply-adds per tile the grid aims at (~3 ms on one core) */
#define TILE_MAX 64

/* The grid: enough tiles for the work (at least 2, at most 64), of at least TILE_M_MIN x TILE_N_MIN, choosing
 * among the grids with that many tiles the one that repacks least (each tile packs its rows of A and its
 * columns of B again: gn * M + gm * N elements per K). Depends on the shape only. Small products get 2-3
 * tiles: on one thread the repacking costs ~1-3% of the GEMM time at SiT-S/2 shapes (4 tiles: ~6%). */
static void tile_grid(int M, int N, int K, int *tm, int *tn) {
    long work = (long)((double)M * N * K / TILE_WORK);
    long want = work < 2 ? 2 : work > TILE_MAX ? TILE_MAX : work;
    int max_gm = M > TILE_M_MIN ? (M + TILE_M_MIN - 1) / TILE_M_MIN : 1;
    int max_gn = N > TILE_N_MIN ? (N + TILE_N_MIN - 1) / TILE_N_MIN : 1;
    if (want > (long)max_gm * max_gn) want = (long)max_gm * max_gn;
    int best_gm = 1, best_gn = 1;
    double best = -1;
    for (int gm = 1; gm <= max_gm; gm++)
        for (int gn = 1; gn <= max_gn && (long)gm * gn < 2 * want + 2; gn++) {
            if ((long)gm * gn < want) continue;
            double cost = (double)gn * M + (double)gm * N + 1e-3 * gm * gn;
            if (best < 0 || cost < best) best = cost, best_gm = gm, best_gn = gn;
        }
    *tm = (M + best_gm - 1) / best_gm;
    *tn = (N + best_gn - 1) / best_gn;
}

/* bias + activation over one row of an output tile (vectorised; see vec_math.h). */
CPU_VEC_CLONES void cpu_epilogue_row(float *row, const float *bias, int N, ft_epilogue epi) {
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

/* The tiled GEMM; with a bias or an activation, each tile gets its epilogue right after its sgemm, while the
 * tile is still in cache (an element-wise step, so the results do not depend on it). */
static void sgemm_tiles(ft_backend *be, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        size_t a_step, const float *B, int ldb, const size_t *b_off, int terms, float *C, int ldc,
                        const float *bias, ft_epilogue epi) {
    if (M <= 0 || N <= 0) return;
    int TM, TN;
    tile_grid(M, N, K * terms, &TM, &TN);
    int cols = (N + TN - 1) / TN;
    long tiles = (long)((M + TM - 1) / TM) * cols;
    int threads = cpu_threads(be);
    if (threads > tiles) threads = (int)tiles;
    if ((double)M * N * K * terms < 64.0 * CPU_PAR_MIN) threads = 1; /* waking the team costs more */
    int epilogue = bias || epi != FT_EPI_NONE;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
    for (long t = 0; t < tiles; t++) {
        int m0 = (int)(t / cols) * TM, n0 = (int)(t % cols) * TN;
        int rows = M - m0 < TM ? M - m0 : TM, ncol = N - n0 < TN ? N - n0 : TN;
        float *c = C + (size_t)m0 * ldc + n0;
        for (int s = 0; s < terms; s++) {
            const float *b = B + (b_off ? b_off[s] : 0) + (trans_b ? (size_t)n0 * ldb : (size_t)n0);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, rows, ncol, K, alpha,
                        A + (size_t)s * a_step + (size_t)m0 * lda, lda, b, ldb, s ? 1.0f : 0.0f, c, ldc);
        }
        if (epilogue)
            for (int m = 0; m < rows; m++) cpu_epilogue_row(c + (size_t)m * ldc, bias ? bias + n0 : NULL, ncol, epi);
    }
}

void cpu_sgemm_sum(ft_backend *be, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   size_t a_step, const float *B, int ldb, const size_t *b_off, int terms, float *C, int ldc) {
    sgemm_tiles(be, trans_b, M, N, K, alpha, A, lda, a_step, B, ldb, b_off, terms, C, ldc, NULL, FT_EPI_NONE);
}

/* ---- few rows: one pass over the weight ----
 * With a handful of rows (the conditioning MLP and the adaLN projection of every block at once for one network
 * call: rows x 27648 outputs x 384 at S/2, 42 MB of weights) sgemm first copies the whole weight into its packed
 * layout, so the weight crosses memory three times for little arithmetic. Here each output is the dot product
 * of its weight row with each input row, the rows in groups of FEW_ROWS_GROUP against a weight row that stays
 * in L1: the weight streams from memory once. The dot products are fmaf into 16 fixed lanes (fixed_sum_lanes),
 * so every clone, a build without clones and any thread count give the same bits; the outputs are cut into
 * chunks fixed by N, and OpenMP only decides which thread runs which chunk. */
#define FEW_ROWS_MAX 4 /* 2 rows x 27648 x 384: 4.2 ms here vs 8.4 ms (sgemm); 4 rows 4.6 vs 8.5; 14 rows 17 vs 12 */
#define FEW_ROWS_GROUP 4
#define FEW_ROWS_CHUNK 256 /* outputs per task */

/* acc[r][l] += x[r][k + l] * w[k + l] over k in steps of 16 (then the tail into lane k % 16), for G rows;
 * with G a constant the accumulators stay in registers. */
static inline __attribute__((always_inline)) void few_rows_dots(float acc[][FIXED_SUM_LANES], const float *x,
                                                                 const float *w, int K, int G) {
    int k = 0;
    for (; k + FIXED_SUM_LANES <= K; k += FIXED_SUM_LANES)
        for (int r = 0; r < G; r++)
#pragma omp simd
            for (int l = 0; l < FIXED_SUM_LANES; l++)
                acc[r][l] = fmaf(x[(size_t)r * K + k + l], w[k + l], acc[r][l]);
    for (; k < K; k++)
        for (int r = 0; r < G; r++)
            acc[r][k % FIXED_SUM_LANES] = fmaf(x[(size_t)r * K + k], w[k], acc[r][k % FIXED_SUM_LANES]);
}

CPU_VEC_CLONES static void few_rows_chunk(float *y, size_t ldy, const float *x, int M, const float *w, int K,
                                          int n0, int n1) {
    for (int n = n0; n < n1; n++) {
        const float *wr = w + (size_t)n * K;
        for (int m0 = 0; m0 < M; m0 += FEW_ROWS_GROUP) {
            int g = M - m0 < FEW_ROWS_GROUP ? M - m0 : FEW_ROWS_GROUP;
            float acc[FEW_ROWS_GROUP][FIXED_SUM_LANES];
            memset(acc, 0, sizeof acc);
            if (g == FEW_ROWS_GROUP) few_rows_dots(acc, x + (size_t)m0 * K, wr, K, FEW_ROWS_GROUP);
            else few_rows_dots(acc, x + (size_t)m0 * K, wr, K, g);
            for (int r = 0; r < g; r++) y[(size_t)(m0 + r) * ldy + n] = fixed_sum_lanes(acc[r]);
        }
    }
}

static void linear_few_rows(ft_backend *be, float *y, size_t ldy, const float *x, const float *w,
                            const float *bias, int M, int N, int K, ft_epilogue epi) {
    int chunks = (N + FEW_ROWS_CHUNK - 1) / FEW_ROWS_CHUNK;
    int threads = cpu_threads(be);
    if (threads > chunks) threads = chunks;
    if ((double)N * K < 8.0 * CPU_PAR_MIN) threads = 1; /* waking the team costs more */
    int epilogue = bias || epi != FT_EPI_NONE;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int c = 0; c < chunks; c++) {
        int n0 = c * FEW_ROWS_CHUNK, n1 = n0 + FEW_ROWS_CHUNK < N ? n0 + FEW_ROWS_CHUNK : N;
        few_rows_chunk(y, ldy, x, M, w, K, n0, n1);
        if (epilogue)
            for (int m = 0; m < M; m++) cpu_epilogue_row(y + (size_t)m * ldy + n0, bias ? bias + n0 : NULL, n1 - n0, epi);
    }
}

void cpu_linear(ft_backend *be, void *y_, ft_buf_type y_type, const void *x_, const void *w_,
                const float *bias, int M, int N, int K, ft_epilogue epi) {
    (void)y_type; /* f32 and act are both float32 here */
    if (M > 0 && N > 0 && K > 0 && cpu_linear_packed(be, y_, x_, w_, bias, M, N, K, epi)) return;
    cpu_linear_plain(be, y_, N, x_, w_, bias, M, N, K, epi);
}

void cpu_linear_plain(ft_backend *be, float *y, size_t ldy, const float *x, const float *w, const float *bias, int M,
                      int N, int K, ft_epilogue epi) {
    if (M > 0 && M <= FEW_ROWS_MAX && N > 0 && K > 0) linear_few_rows(be, y, ldy, x, w, bias, M, N, K, epi);
    else sgemm_tiles(be, 1, M, N, K, 1.0f, x, K, 0, w, K, NULL, 1, y, (int)ldy, bias, epi);
}

void cpu_cast(ft_backend *be, void *dst, ft_buf_type dst_type, const void *src, ft_buf_type src_type,
              size_t n) {
    (void)be;
    (void)dst_type;
    (void)src_type;
    if (dst != src) memmove(dst, src, n * sizeof(float));
}
