/* kernels/cpu/attention.c — multi-head softmax attention from a packed qkv
 * buffer. Work is split into (sample, head, block of queries) tasks over
 * OpenMP; each task computes its block x T scores with one sgemm, a row
 * softmax, and P V with a second sgemm. Up to Q_WHOLE tokens a block is the
 * whole sequence, so each head's K and V are packed (inside the sgemm) once
 * rather than once per block; longer sequences use blocks of Q_BLOCK queries
 * (the score block stays in cache; never the full T x T matrix). OpenBLAS
 * runs single-threaded (always, see gemm.c); the task split depends on T
 * only, not on the thread count, so neither do the results. */
#include <math.h>
#include <omp.h>
#include <cblas.h>

#include "cpu_ops.h"
#include "vec_math.h"

#define Q_BLOCK 64
#define Q_WHOLE 256

/* Queries per task; depends on T only (the results must not depend on the thread count). */
static int q_block(int T) { return T <= Q_WHOLE ? T : Q_BLOCK; }

/* In-place softmax of one score row (max-subtracted, vectorised exp). */
CPU_VEC_CLONES static void softmax_row(float *row, int T) {
    float mx = -INFINITY, sum;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < T; j++) mx = row[j] > mx ? row[j] : mx;
#pragma omp simd
    for (int j = 0; j < T; j++) row[j] = vexpf(row[j] - mx);
    sum = fixed_shifted_sum(row, T, 0.0f, 0); /* the same bits in every clone */
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < T; j++) row[j] *= inv;
}

long cpu_attention_max_tokens(size_t scratch_floats) { return (long)(scratch_floats / Q_BLOCK); }

void cpu_attention(ft_backend *be, void *o_, const void *qkv_, int N, int T, int H, int hd) {
    float *o = o_;
    const float *qkv = qkv_;
    int D = H * hd, ld = 3 * D; /* row stride of qkv */
    float scale = 1.0f / sqrtf((float)hd);
    size_t scratch_floats;
    float *scratch = cpu_scratch(be, &scratch_floats);
    int qb_rows = q_block(T);
    size_t block = (size_t)qb_rows * T; /* scores of one task */
    int threads = cpu_threads(be);
    if ((size_t)threads * block > scratch_floats) threads = (int)(scratch_floats / block);
    if (threads < 1) {
        ft_backend_fail(be, "attention: sequence length %d exceeds the CPU scratch", T);
        return;
    }
    int n_qb = (T + qb_rows - 1) / qb_rows;
    long tasks = (long)N * H * n_qb;
    if (threads > tasks) threads = (int)tasks;
    if ((size_t)N * H * T * T * hd < CPU_PAR_MIN) threads = 1;
#pragma omp parallel num_threads(threads)
    {
        float *s = scratch + (size_t)omp_get_thread_num() * block;
#pragma omp for schedule(static)
        for (long task = 0; task < tasks; task++) {
            int n = (int)(task / ((long)H * n_qb)), h = (int)(task / n_qb % H), qb = (int)(task % n_qb);
            int q0 = qb * qb_rows, rows = T - q0 < qb_rows ? T - q0 : qb_rows;
            const float *base = qkv + (size_t)n * T * ld + (size_t)h * hd;
            const float *q = base + (size_t)q0 * ld, *k = base + D, *v = base + 2 * D;
            /* s[rows, T] = scale * q k^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, T, hd, scale, q, ld, k, ld, 0.0f, s, T);
            for (int i = 0; i < rows; i++) softmax_row(s + (size_t)i * T, T);
            /* o[rows, hd] = s v, written into the merged-heads layout */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, T, 1.0f, s, T, v, ld, 0.0f,
                        o + ((size_t)n * T + q0) * D + (size_t)h * hd, D);
        }
    }
}
