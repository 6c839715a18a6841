/* kernels/cpu/vec_math.h — branch-free float math that vectorises (so the
 * CPU backend's exp-heavy loops run at SIMD width), and the target-clones
 * attribute that compiles a hot function for AVX-512, AVX2 and baseline
 * x86-64 with the best picked at load time. */
#ifndef FT_CPU_VEC_MATH_H
#define FT_CPU_VEC_MATH_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define CPU_VEC_HAS_CLONES 1
#define CPU_VEC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), noinline))
#else
#define CPU_VEC_HAS_CLONES 0
#define CPU_VEC_CLONES
#endif

/* Sums in an order that does not depend on the vector width: 16 interleaved partial sums (lane l takes the
 * elements i with i % 16 == l, in order), combined in a fixed order at the end. Every clone (AVX-512 one
 * vector, AVX2 two, SSE four) and a build without clones (sanitizers, -O1) add the same numbers in the same
 * order, so they give the same bits: an `omp simd reduction` would sum in an order set by the width. */
#define FIXED_SUM_LANES 16

static inline __attribute__((always_inline)) float fixed_sum_lanes(const float acc[FIXED_SUM_LANES]) {
    float s = 0.0f;
    for (int l = 0; l < FIXED_SUM_LANES; l++) s += acc[l];
    return s;
}

/* sum over i of (x[i] - shift), or of its square */
static inline __attribute__((always_inline)) float fixed_shifted_sum(const float *x, int n, float shift,
                                                                     int squares) {
    float acc[FIXED_SUM_LANES] = {0};
    int i = 0;
    for (; i + FIXED_SUM_LANES <= n; i += FIXED_SUM_LANES)
#pragma omp simd
        for (int l = 0; l < FIXED_SUM_LANES; l++) {
            float d = x[i + l] - shift;
            acc[l] += squares ? d * d : d;
        }
    for (; i < n; i++) {
        float d = x[i] - shift;
        acc[i % FIXED_SUM_LANES] += squares ? d * d : d;
    }
    return fixed_sum_lanes(acc);
}

#define VEXP_LO_BITS 0xC2AE999Au /* -87.3f */
#define VEXP_HI_BITS 0x42B0999Au /* 88.3f */

/* x clamped to [-87.3, 88.3], NaN to -87.3 (so the float-to-int conversion in
 * vexpf is never undefined). Done on the bits with integer min/max and no
 * select of a constant: a float compare-and-select (or a NaN test that picks a
 * constant) becomes a branch that gcc threads into the polynomial, and with
 * its default -ftrapping-math the AVX2 and SSE clones then stay scalar
 * ("control flow in loop"; only AVX-512's masking vectorised them). A NaN is
 * first made negative; unsigned, the bits of floats below -87.3 (-Inf,
 * negative NaNs) are those above VEXP_LO_BITS; signed, the bits of floats
 * above 88.3 (+Inf) are those above VEXP_HI_BITS. tests/test_simd.c checks
 * the AVX2 clones stay vectorised. */
static inline float vexp_clamp(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u |= (uint32_t)((u & 0x7FFFFFFFu) > 0x7F800000u) << 31; /* NaN -> a negative NaN */
    u = u > VEXP_LO_BITS ? VEXP_LO_BITS : u;
    u = (int32_t)u > (int32_t)VEXP_HI_BITS ? VEXP_HI_BITS : u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* e^x within 2 ulp over the float range (Cephes expf polynomial, Cody-Waite
 * reduction, round-to-nearest via the 1.5 * 2^23 trick); clamps to
 * [e^-87.3, e^88.3], NaN gives e^-87.3. */
static inline float vexpf(float x) {
    x = vexp_clamp(x);
    float r = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float f = x - r * 0.693359375f;
    f = f + r * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * f + 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    p = p * f * f + f + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)r + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

static inline float vsiluf(float x) { return x / (1.0f + vexpf(-x)); }

/* GELU, tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
 * with tanh(u) = 1 - 2 / (1 + e^{2u}). */
static inline float vgelu_tanhf(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (2.0f - 2.0f / (1.0f + vexpf(2.0f * u)));
}

#endif
