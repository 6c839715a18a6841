/* kernels/cpu/attention.c — multi-head softmax attention from a packed qkv
 * buffer.
 *
 * With the own micro-kernels (x86-64, AVX2+FMA or AVX-512; off with
 * FT_CPU_LINEAR=blas) the scores are computed transposed, S^T = K Q^T, so
 * that the keys are the kernel's MR-row panels (K packed once per head) and a
 * block of NR queries its NR columns (Q transposed once per head); the
 * softmax then runs down the columns, NR queries side by side in SIMD lanes,
 * and O^T = V^T P^T takes P^T as it lies, with V^T packed once per head.
 * When the heads share out evenly, each thread packs a head and runs all its
 * query blocks while the packs are in L2; otherwise heads are packed in
 * groups that fit the scratch (one parallel pass), then the (head, query
 * block) tasks are shared out (a second pass). Every output is a fixed
 * chain of fmadds, exps and sums whatever the thread count or grouping (and
 * the same for the 4x24 and 8x48 kernels).
 *
 * Otherwise (or when one head does not fit the scratch) OpenBLAS: tasks of
 * (sample, head, block of queries), each computing its block x T scores with
 * one sgemm, a row softmax, and P V with a second sgemm. Up to Q_WHOLE tokens
 * a block is the whole sequence, so each head's K and V are packed (inside
 * the sgemm) once rather than once per block; longer sequences use blocks of
 * Q_BLOCK queries (the score block stays in cache; never the full T x T
 * matrix). OpenBLAS runs single-threaded (always, see gemm.c); the task split
 * depends on T only, not on the thread count, so neither do the results. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include <cblas.h>

#include "cpu_ops.h"
#include "gemm_kernels.h"
#include "vec_avx2.h"
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

#ifdef CPU_GEMM_KERNELS
#include <immintrin.h>

#define AT_KC 256 /* k values (head features or keys) per micro-kernel call */

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* dst[c][r] = src[r][c] for r < rows, c < cols: 8 x 8 blocks in registers, scalar edges. */
__attribute__((target("avx2"))) static void transpose(float *dst, size_t ldd, const float *src, size_t lds, int rows,
                                                      int cols) {
    int r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (int r = 0; r < r8; r += 8)
        for (int c = 0; c < c8; c += 8) {
            const float *s = src + (size_t)r * lds + c;
            __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + lds), a2 = _mm256_loadu_ps(s + 2 * lds);
            __m256 a3 = _mm256_loadu_ps(s + 3 * lds), a4 = _mm256_loadu_ps(s + 4 * lds);
            __m256 a5 = _mm256_loadu_ps(s + 5 * lds), a6 = _mm256_loadu_ps(s + 6 * lds);
            __m256 a7 = _mm256_loadu_ps(s + 7 * lds);
            __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
            __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
            __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5);
            __m256 t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + (size_t)c * ldd + r;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    for (int r = 0; r < rows; r++)
        for (int c = r < r8 ? c8 : 0; c < cols; c++) dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
}

/* Softmax down the columns of s[T][NR] (column c: the scores of query c over the keys, unscaled; NR a multiple of
 * 8, at most 48): s becomes e^(scale (s - max)), inv[c] 1 / the column's sum (summed over the keys in order). */
static AVX2_FMA void column_softmax(float *s, int T, int NR, float scale, float *inv) {
    __m256 mx[6], sum[6];
    const int V = NR / 8;
    for (int c = 0; c < V; c++) mx[c] = _mm256_set1_ps(-INFINITY), sum[c] = _mm256_setzero_ps();
    for (int t = 0; t < T; t++)
        for (int c = 0; c < V; c++) mx[c] = _mm256_max_ps(_mm256_loadu_ps(s + (size_t)t * NR + 8 * c), mx[c]);
    const __m256 sc = _mm256_set1_ps(scale);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < V; c++) {
            float *p = s + (size_t)t * NR + 8 * c;
            __m256 e = vexp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p), mx[c]), sc));
            _mm256_storeu_ps(p, e);
            sum[c] = _mm256_add_ps(sum[c], e);
        }
    for (int c = 0; c < V; c++) _mm256_storeu_ps(inv + 8 * c, _mm256_div_ps(_mm256_set1_ps(1.0f), sum[c]));
}

/* One head's operands in the kernel's layouts, each at a 64-byte boundary. */
typedef struct {
    int T, hd, MR, NR, t_pad, hd_pad, tq; /* keys rounded up to MR, features to MR, queries to NR */
    size_t head_floats, task_floats;      /* per packed head; per task's scores and output */
} att_shape;

static att_shape shape_of(const conv_kernel *kn, int T, int hd) {
    att_shape a = {T, hd, kn->mr, kn->nr, round_up(T, kn->mr), round_up(hd, kn->mr), round_up(T, kn->nr), 0, 0};
    a.head_floats = (size_t)a.t_pad * hd + (size_t)a.hd_pad * T + (size_t)hd * a.tq + 48;
    a.task_floats = (size_t)a.t_pad * a.NR + (size_t)a.hd_pad * a.NR + a.NR + 48;
    return a;
}

/* Where one head's operands lie in its packed area p: K as key panels kp[T_pad / MR][hd][MR], V^T as feature
 * panels vp[hd_pad / MR][T][MR], Q^T as qt[hd][tq]. */
static void head_layout(const att_shape *a, float *p, float **kp, float **vp, float **qt) {
    *kp = align64(p);
    *vp = align64(*kp + (size_t)a->t_pad * a->hd);
    *qt = align64(*vp + (size_t)a->hd_pad * a->T);
}

/* One head's K, V and Q (row stride ld) into its packed area, padding zero. */
static void pack_head(const att_shape *a, float *p, const float *q, const float *k, const float *v, int ld) {
    const int T = a->T, hd = a->hd, MR = a->MR;
    float *kp, *vp, *qt;
    head_layout(a, p, &kp, &vp, &qt);
    cpu_pack_rows(kp, k, T, ld, 0, a->t_pad, 0, hd, MR);
    for (int f0 = 0; f0 < a->hd_pad; f0 += MR) {
        float *dst = vp + (size_t)f0 * T;
        if (f0 + MR <= hd && MR == 4) /* constant sizes: moves, not memcpy calls */
            for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * 4, v + (size_t)t * ld + f0, 4 * sizeof(float));
        else if (f0 + MR <= hd && MR == 8)
            for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * 8, v + (size_t)t * ld + f0, 8 * sizeof(float));
        else
            for (int t = 0; t < T; t++)
                for (int r = 0; r < MR; r++) dst[(size_t)t * MR + r] = f0 + r < hd ? v[(size_t)t * ld + f0 + r] : 0.0f;
    }
    transpose(qt, a->tq, q, ld, T, hd);
    for (int f = 0; f < hd; f++) memset(qt + (size_t)f * a->tq + T, 0, (size_t)(a->tq - T) * sizeof(float));
}

/* Queries [q0, q0 + NR) of one head into o (row stride D): S^T = K Q^T, column softmax, O^T = V^T P^T. */
static void attend_block(const conv_kernel *kn, const att_shape *a, const float *kp, const float *vp, const float *qt,
                         int q0, float scale, float *work, float *o, int D) {
    const int T = a->T, hd = a->hd, MR = a->MR, NR = a->NR;
    float *s = align64(work), *ot = align64(s + (size_t)a->t_pad * NR), *inv = align64(ot + (size_t)a->hd_pad * NR);
    for (int t0 = 0; t0 < a->t_pad; t0 += MR)
        for (int k0 = 0; k0 < hd; k0 += AT_KC)
            kn->run(hd - k0 < AT_KC ? hd - k0 : AT_KC, kp + ((size_t)t0 * hd + (size_t)k0 * MR), qt + (size_t)k0 * a->tq + q0,
                    a->tq, s + (size_t)t0 * NR, NR, k0 > 0);
    column_softmax(s, T, NR, scale, inv);
    for (int f0 = 0; f0 < a->hd_pad; f0 += MR)
        for (int k0 = 0; k0 < T; k0 += AT_KC)
            kn->run(T - k0 < AT_KC ? T - k0 : AT_KC, vp + ((size_t)f0 * T + (size_t)k0 * MR), s + (size_t)k0 * NR, NR,
                    ot + (size_t)f0 * NR, NR, k0 > 0);
    for (int f = 0; f < hd; f++)
#pragma omp simd
        for (int c = 0; c < NR; c++) ot[(size_t)f * NR + c] *= inv[c];
    transpose(o, D, ot, NR, hd, T - q0 < NR ? T - q0 : NR);
}

/* Head `head` (sample head / H, head head % H) of the packed qkv: its q (k at + D, v at + 2 D), and its output. */
static const float *head_qkv(const float *qkv, long head, int H, int T, int hd) {
    return qkv + (size_t)(head / H) * T * 3 * H * hd + (size_t)(head % H) * hd;
}

static float *head_out(float *o, long head, int H, int T, int hd, int q0) {
    return o + ((size_t)(head / H) * T + q0) * H * hd + (size_t)(head % H) * hd;
}

/* The own-kernel path; 0 (nothing written) when one head does not fit the scratch. */
static int attention_packed(ft_backend *be, const conv_kernel *kn, float *o, const float *qkv, int N, int T, int H,
                            int hd) {
    const att_shape a = shape_of(kn, T, hd);
    const int D = H * hd, ld = 3 * D, blocks = a.tq / a.NR;
    const float scale = 1.0f / sqrtf((float)hd);
    size_t scratch_floats;
    float *scratch = cpu_scratch(be, &scratch_floats);
    if (scratch_floats < a.head_floats + a.task_floats) return 0;
    long heads = (long)N * H;
    int threads = cpu_threads(be);
    if ((size_t)N * H * T * T * hd < CPU_PAR_MIN) threads = 1;
    if (threads > heads * blocks) threads = (int)(heads * blocks);
    if (a.head_floats + (size_t)threads * a.task_floats > scratch_floats)
        threads = (int)((scratch_floats - a.head_floats) / a.task_floats);
    /* heads that share out evenly: each thread packs a head and runs its blocks while the packs are in L2 */
    size_t own = a.head_floats + a.task_floats;
    if ((heads % threads == 0 || heads >= 4 * threads) && (size_t)threads * own <= scratch_floats) {
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
        for (long head = 0; head < heads; head++) {
            float *p = scratch + (size_t)omp_get_thread_num() * own, *kp, *vp, *qt;
            const float *q = head_qkv(qkv, head, H, T, hd);
            pack_head(&a, p, q, q + D, q + 2 * D, ld);
            head_layout(&a, p, &kp, &vp, &qt);
            for (int q0 = 0; q0 < a.tq; q0 += a.NR)
                attend_block(kn, &a, kp, vp, qt, q0, scale, p + a.head_floats, head_out(o, head, H, T, hd, q0), D);
        }
        return 1;
    }
    /* otherwise the heads are packed in groups that fit the scratch, and the (head, block) tasks shared out */
    long group = (long)((scratch_floats - (size_t)threads * a.task_floats) / a.head_floats);
    if (group > heads) group = heads;
    float *packs = scratch + (size_t)threads * a.task_floats;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *work = scratch + (size_t)omp_get_thread_num() * a.task_floats;
        for (long g0 = 0; g0 < heads; g0 += group) {
            long n_heads = heads - g0 < group ? heads - g0 : group;
#pragma omp for schedule(static)
            for (long i = 0; i < n_heads; i++) {
                const float *q = head_qkv(qkv, g0 + i, H, T, hd);
                pack_head(&a, packs + (size_t)i * a.head_floats, q, q + D, q + 2 * D, ld);
            }
#pragma omp for schedule(static)
            for (long task = 0; task < n_heads * blocks; task++) {
                long i = task / blocks, head = g0 + i;
                int q0 = (int)(task % blocks) * a.NR;
                float *kp, *vp, *qt;
                head_layout(&a, packs + (size_t)i * a.head_floats, &kp, &vp, &qt);
                attend_block(kn, &a, kp, vp, qt, q0, scale, work, head_out(o, head, H, T, hd, q0), D);
            }
        }
    }
    return 1;
}
#endif

void cpu_attention(ft_backend *be, void *o_, const void *qkv_, int N, int T, int H, int hd) {
    float *o = o_;
    const float *qkv = qkv_;
#ifdef CPU_GEMM_KERNELS
    const conv_kernel *kn = cpu_linear_kernel();
    if (kn && attention_packed(be, kn, o, qkv, N, T, H, hd)) return;
#endif
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
