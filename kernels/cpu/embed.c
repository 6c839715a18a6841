/* kernels/cpu/embed.c — timestep/label embeddings, patch embed, unpatchify. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_ops.h"

void cpu_timestep_embedding(ft_backend *be, float *out, const float *t, int N, int dim) {
    (void)be;
    int half = dim / 2;
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * dim;
        for (int k = 0; k < half; k++) {
            /* torch: exp(-ln(10000) * arange(half) / half) in float32 */
            float freq = expf(-9.210340371976184f * (float)k / (float)half);
            float arg = t[n] * freq;
            row[k] = cosf(arg);
            row[half + k] = sinf(arg);
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
}

void cpu_embedding_lookup(ft_backend *be, float *out, const float *table, const int32_t *labels, int N,
                          int D, int add) {
    (void)be;
    for (int n = 0; n < N; n++) {
        const float *src = table + (size_t)labels[n] * D;
        float *dst = out + (size_t)n * D;
        if (add)
            for (int d = 0; d < D; d++) dst[d] += src[d];
        else
            memcpy(dst, src, (size_t)D * sizeof(float));
    }
}

/* Tokens per task of the patch embedding: the split depends on the sizes only, so the bits do not depend on the
 * thread count. */
#define PATCH_ROWS 64

/* The patches of tokens [r0, r0 + rows) as rows of an im2col matrix (channel, pi, qi order; x channels, then v),
 * then one sgemm against the conv weight [D x K], then the bias and the position embedding (torch's order: conv
 * output + bias, then + pos). The conv as a per-token dot product loop took 18 % of a refiner forward. */
void cpu_patch_embed(ft_backend *be, float *tokens, const float *x, int cx, int x_batch, const float *v,
                     int cv, const void *w_, const float *bias, const float *pos, int N, int S, int p, int D) {
    const float *w = w_;
    int g = S / p, T = g * g, cin = cx + cv, K = cin * p * p;
    long rows_total = (long)N * T, tasks = (rows_total + PATCH_ROWS - 1) / PATCH_ROWS;
    size_t plane = (size_t)S * S, slice = (size_t)PATCH_ROWS * K, scratch_floats;
    float *scratch = cpu_scratch(be, &scratch_floats);
    int threads = cpu_threads(be);
    if (threads > tasks) threads = (int)tasks;
    if ((size_t)N * T * D * K < CPU_PAR_MIN) threads = 1;
    if ((size_t)threads * slice > scratch_floats) threads = (int)(scratch_floats / slice);
    if (threads < 1) {
        ft_backend_fail(be, "patch embed: %d-value patches exceed the CPU scratch", K);
        return;
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *patches = scratch + (size_t)omp_get_thread_num() * slice;
#pragma omp for schedule(static)
        for (long task = 0; task < tasks; task++) {
            long r0 = task * PATCH_ROWS;
            int rows = rows_total - r0 < PATCH_ROWS ? (int)(rows_total - r0) : PATCH_ROWS;
            for (int i = 0; i < rows; i++) {
                int n = (int)((r0 + i) / T), tok = (int)((r0 + i) % T), r = tok / g, c = tok % g;
                float *patch = patches + (size_t)i * K;
                for (int ch = 0; ch < cin; ch++) {
                    const float *src = ch < cx ? x + ((size_t)(n % x_batch) * cx + ch) * plane
                                               : v + ((size_t)n * cv + (ch - cx)) * plane;
                    for (int pi = 0; pi < p; pi++)
                        for (int qi = 0; qi < p; qi++)
                            patch[(ch * p + pi) * p + qi] = src[(size_t)(r * p + pi) * S + (c * p + qi)];
                }
            }
            float *out = tokens + (size_t)r0 * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, D, K, 1.0f, patches, K, w, K, 0.0f, out, D);
            for (int i = 0; i < rows; i++) {
                float *o = out + (size_t)i * D;
                const float *pe = pos + (size_t)((r0 + i) % T) * D;
#pragma omp simd
                for (int d = 0; d < D; d++) o[d] = (o[d] + bias[d]) + pe[d];
            }
        }
    }
}

void cpu_unpatchify(ft_backend *be, float *img, const void *tok_, int N, int S, int p, int c_full, int c_keep) {
    (void)be;
    const float *tok = tok_;
    int g = S / p, T = g * g, F = p * p * c_full;
#pragma omp parallel for schedule(static) if ((size_t)N * c_keep * S * S > CPU_PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int ch = 0; ch < c_keep; ch++)
            for (int y = 0; y < S; y++)
                for (int xx = 0; xx < S; xx++) {
                    int r = y / p, pi = y % p, c = xx / p, qi = xx % p;
                    img[(((size_t)n * c_keep + ch) * S + y) * S + xx] =
                        tok[((size_t)n * T + r * g + c) * F + (pi * p + qi) * c_full + ch];
                }
}
