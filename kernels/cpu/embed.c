/* kernels/cpu/embed.c — timestep/label embeddings, patch embed, unpatchify. */
#include <math.h>
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

void cpu_patch_embed(ft_backend *be, float *tokens, const float *x, int cx, int x_batch, const float *v,
                     int cv, const void *w_, const float *bias, const float *pos, int N, int S, int p, int D) {
    (void)be;
    const float *w = w_;
    int g = S / p, T = g * g, cin = cx + cv, K = cin * p * p;
    size_t plane = (size_t)S * S;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * T * D * K > CPU_PAR_MIN)
    for (int n = 0; n < N; n++) {
        for (int tok = 0; tok < T; tok++) {
            int r = tok / g, c = tok % g;
            float patch[K];
            /* im2col order (channel, pi, qi): x channels first, then v. */
            for (int ch = 0; ch < cin; ch++) {
                const float *src = ch < cx ? x + ((size_t)(n % x_batch) * cx + ch) * plane
                                           : v + ((size_t)n * cv + (ch - cx)) * plane;
                for (int pi = 0; pi < p; pi++)
                    for (int qi = 0; qi < p; qi++)
                        patch[(ch * p + pi) * p + qi] = src[(size_t)(r * p + pi) * S + (c * p + qi)];
            }
            float *out = tokens + ((size_t)n * T + tok) * D;
            const float *pe = pos + (size_t)tok * D;
            for (int d = 0; d < D; d++) {
                const float *wr = w + (size_t)d * K;
                float acc = 0.0f;
                for (int k = 0; k < K; k++) acc += wr[k] * patch[k];
                /* conv output (+ bias) first, then the position embedding, as torch adds them */
                out[d] = (acc + bias[d]) + pe[d];
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
