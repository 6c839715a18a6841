/* kernels/cpu/elementwise.c — f32 element-wise ops: SiLU, add, scale,
 * transpose, guidance combine, ODE updates, uint8 mapping. */
#include <math.h>

#include "cpu_ops.h"
#include "vec_math.h"

/* SiLU is exp-bound: compiled per SIMD level (vec_math.h), run in spans. */
#define SILU_SPAN 16384

CPU_VEC_CLONES static void silu_span(float *y, const float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = vsiluf(x[i]);
}

void cpu_silu(ft_backend *be, float *y, const float *x, size_t n) {
    (void)be;
    size_t spans = (n + SILU_SPAN - 1) / SILU_SPAN;
#pragma omp parallel for schedule(static) if (n > CPU_PAR_MIN)
    for (size_t s = 0; s < spans; s++) {
        size_t i = s * SILU_SPAN;
        silu_span(y + i, x + i, n - i < SILU_SPAN ? n - i : SILU_SPAN);
    }
}

/* Memory-bound loops: `simd` (each element reads and writes one index, so in-place calls are fine) lets gcc -O2
 * vectorise them without the alias-check versions its cheap cost model refuses. */
void cpu_add(ft_backend *be, float *y, const float *a, const float *b, size_t n) {
    (void)be;
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void cpu_scale(ft_backend *be, float *y, const float *x, float s, size_t n) {
    (void)be;
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] * s;
}

void cpu_transpose(ft_backend *be, float *y, const float *x, int batch, int C, int R) {
    (void)be;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)batch * C * R > CPU_PAR_MIN)
    for (int b = 0; b < batch; b++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++)
                y[((size_t)b * R + r) * C + c] = x[((size_t)b * C + c) * R + r];
}

void cpu_cfg_combine(ft_backend *be, float *v, const float *raw, int B, int C, int HW, const float *scale,
                     int guided) {
    (void)be;
    float s = *scale;
    size_t half = (size_t)B * C * HW;
#pragma omp parallel for collapse(2) schedule(static) if (half > CPU_PAR_MIN)
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++) {
            size_t off = ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                float cond = raw[off + i], uncond = raw[half + off + i];
                if (c < guided) {
                    float g = uncond + s * (cond - uncond);
                    v[off + i] = g;
                    v[half + off + i] = g;
                } else {
                    v[off + i] = cond;
                    v[half + off + i] = uncond;
                }
            }
        }
}

void cpu_euler_update(ft_backend *be, float *out, const float *x, const float *d, float h, size_t n) {
    (void)be;
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = x[i] + h * d[i];
}

void cpu_heun_update(ft_backend *be, float *out, const float *x, const float *d, const float *e, float h,
                     size_t n) {
    (void)be;
    float half_h = 0.5f * h;
#pragma omp parallel for simd schedule(static) if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = x[i] + half_h * (d[i] + e[i]);
}

void cpu_to_rgb8(ft_backend *be, uint8_t *rgb, const float *img, int N, int C, int S) {
    (void)be;
    size_t plane = (size_t)S * S;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * plane * 3 > CPU_PAR_MIN)
    for (int n = 0; n < N; n++)
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++) {
                float v = 127.5f * img[((size_t)n * C + (C == 1 ? 0 : c)) * plane + p] + 128.0f;
                /* clamp then truncate toward zero, as torch's .to(uint8); NaN maps to 0 */
                v = v > 255.0f ? 255.0f : (v >= 0.0f ? v : 0.0f);
                rgb[((size_t)n * plane + p) * 3 + c] = (uint8_t)v;
            }
}
