/* kernels/cpu/attention.c — multi-head softmax attention from a packed qkv
 * buffer, one (sample, head, query block) per task; scores live in a
 * per-thread slice of the backend scratch, never as a full T x T matrix. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_ops.h"

void cpu_attention(ft_backend *be, void *o_, const void *qkv_, int N, int T, int H, int hd) {
    float *o = o_;
    const float *qkv = qkv_;
    int D = H * hd;
    size_t ld = (size_t)3 * D; /* row stride of qkv */
    float scale = 1.0f / sqrtf((float)hd);
    size_t scratch_floats;
    float *scratch = cpu_scratch(be, &scratch_floats);
    int max_threads = omp_get_max_threads();
    if ((size_t)max_threads * T > scratch_floats) max_threads = (int)(scratch_floats / (size_t)T);
    if (max_threads < 1) {
        ft_backend_fail(be, "attention: sequence length %d exceeds the CPU scratch", T);
        return;
    }
    const int q_block = 16;
    int n_qb = (T + q_block - 1) / q_block;
#pragma omp parallel num_threads(max_threads) if ((size_t)N * H * T * T * hd > CPU_PAR_MIN)
    {
        float *s = scratch + (size_t)omp_get_thread_num() * T;
#pragma omp for collapse(3) schedule(static)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++)
                for (int qb = 0; qb < n_qb; qb++) {
                    const float *base = qkv + (size_t)n * T * ld;
                    const float *kbase = base + D + (size_t)h * hd;
                    const float *vbase = base + 2 * D + (size_t)h * hd;
                    int q_end = (qb + 1) * q_block < T ? (qb + 1) * q_block : T;
                    for (int i = qb * q_block; i < q_end; i++) {
                        const float *q = base + (size_t)i * ld + (size_t)h * hd;
                        float mx = -INFINITY;
                        for (int j = 0; j < T; j++) {
                            const float *k = kbase + (size_t)j * ld;
                            float dot = 0.0f;
                            for (int e = 0; e < hd; e++) dot += q[e] * k[e];
                            s[j] = dot * scale;
                            if (s[j] > mx) mx = s[j];
                        }
                        float sum = 0.0f;
                        for (int j = 0; j < T; j++) {
                            s[j] = expf(s[j] - mx);
                            sum += s[j];
                        }
                        float inv = 1.0f / sum;
                        float *out = o + ((size_t)n * T + i) * D + (size_t)h * hd;
                        memset(out, 0, (size_t)hd * sizeof(float));
                        for (int j = 0; j < T; j++) {
                            const float *v = vbase + (size_t)j * ld;
                            float pj = s[j] * inv;
                            for (int e = 0; e < hd; e++) out[e] += pj * v[e];
                        }
                    }
                }
    }
}
