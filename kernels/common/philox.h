/*
 * kernels/common/philox.h — the engine's noise, identical bit for bit on the
 * CPU and in CUDA kernels (this one source is compiled by both).
 *
 * Definition. Image b of a call uses the 64-bit seed s = seed + b, key
 * (k0, k1) = (low 32 bits of s, high 32 bits of s). Its element i (flat index
 * over [C, S, S]) is normal number (i % 4) of block j = i / 4:
 *   (r0, r1, r2, r3) = Philox4x32-10(counter = (j, 0, 0, 0), key = (k0, k1))
 *   u_a = ((r_a >> 8) + 1) * 2^-24   in (0, 1]      (a = 0, 2)
 *   f_a = (r_a >> 8) * 2^-24         in [0, 1)      (a = 1, 3)
 *   rho = sqrt(-2 ln u_a),  normals rho cos(2 pi f), rho sin(2 pi f)
 *   element 4j + 0 = rho0 cos(2 pi f1), 4j + 1 = rho0 sin(2 pi f1),
 *   element 4j + 2 = rho2 cos(2 pi f3), 4j + 3 = rho2 sin(2 pi f3).
 * ln, sin and cos are evaluated by the polynomials below using only
 * correctly rounded float operations (explicit fmaf, no contraction), so the
 * CPU and the GPU produce the same bits. Max error vs libm: ~2 ulp.
 */
#ifndef FT_PHILOX_H
#define FT_PHILOX_H

#include <stdint.h>

#if defined(__CUDACC__)
#define FT_HD __host__ __device__ __forceinline__
#else
#define FT_HD static inline
#endif

/* nvcc compiles FT_HD functions twice: the device pass (__CUDA_ARCH__
 * defined) uses the correctly rounded intrinsics, the host pass the C path.
 * The CPU emulator of the CUDA kernels (FT_CUDA_EMU) takes the device path. */
#if defined(__CUDA_ARCH__) || defined(FT_CUDA_EMU)
#define FT_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#define FT_MUL(a, b) __fmul_rn((a), (b))
#define FT_ADD(a, b) __fadd_rn((a), (b))
#define FT_SUB(a, b) __fsub_rn((a), (b))
#define FT_DIV(a, b) __fdiv_rn((a), (b))
#define FT_SQRT(a) __fsqrt_rn(a)
#define FT_FLOAT_BITS(f) ((uint32_t)__float_as_uint(f))
#define FT_BITS_FLOAT(u) __uint_as_float(u)
#else
#include <math.h>
#include <string.h>
#define FT_FMA(a, b, c) fmaf((a), (b), (c))
/* Separate statements keep these uncontracted under C11 (-ffp-contract=off). */
#define FT_MUL(a, b) ft_philox_mul((a), (b))
#define FT_ADD(a, b) ft_philox_add((a), (b))
#define FT_SUB(a, b) ft_philox_sub((a), (b))
#define FT_DIV(a, b) ft_philox_div((a), (b))
#define FT_SQRT(a) sqrtf(a)
#define FT_FLOAT_BITS(f) ft_philox_float_bits(f)
#define FT_BITS_FLOAT(u) ft_philox_bits_float(u)
static inline float ft_philox_mul(float a, float b) { volatile float r = a * b; return r; }
static inline float ft_philox_add(float a, float b) { volatile float r = a + b; return r; }
static inline float ft_philox_sub(float a, float b) { volatile float r = a - b; return r; }
static inline float ft_philox_div(float a, float b) { volatile float r = a / b; return r; }
static inline uint32_t ft_philox_float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float ft_philox_bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
#endif

typedef struct { uint32_t v[4]; } ft_philox_u4;

FT_HD uint32_t ft_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* Philox4x32 with 10 rounds (Salmon et al., SC'11; Random123 constants). */
FT_HD ft_philox_u4 ft_philox4x32_10(ft_philox_u4 ctr, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = ft_mulhilo32(0xD2511F53u, ctr.v[0], &hi0);
        uint32_t lo1 = ft_mulhilo32(0xCD9E8D57u, ctr.v[2], &hi1);
        ft_philox_u4 next;
        next.v[0] = hi1 ^ ctr.v[1] ^ k0;
        next.v[1] = lo1;
        next.v[2] = hi0 ^ ctr.v[3] ^ k1;
        next.v[3] = lo0;
        ctr = next;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return ctr;
}

/* ln(u) for u in (0, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)),
 * ln m = 2 atanh(s), s = (m - 1) / (m + 1), odd series to s^11. */
FT_HD float ft_philox_log(float u) {
    uint32_t bits = FT_FLOAT_BITS(u);
    int e = (int)((bits >> 23) & 0xFFu) - 127;
    float m = FT_BITS_FLOAT((bits & 0x007FFFFFu) | 0x3F800000u); /* [1, 2) */
    if (m > 1.41421356f) {
        m = FT_MUL(m, 0.5f);
        e += 1;
    }
    float s = FT_DIV(FT_SUB(m, 1.0f), FT_ADD(m, 1.0f));
    float s2 = FT_MUL(s, s);
    float p = FT_FMA(s2, 0.0909090909f, 0.1111111111f);
    p = FT_FMA(s2, p, 0.1428571429f);
    p = FT_FMA(s2, p, 0.2f);
    p = FT_FMA(s2, p, 0.3333333333f);
    p = FT_FMA(s2, p, 1.0f);
    float ln_m = FT_MUL(FT_MUL(2.0f, s), p);
    /* e ln2 split into a high part exact in float and a low correction. */
    float fe = (float)e;
    return FT_FMA(fe, 0.693145752f, FT_FMA(fe, 1.42860677e-06f, ln_m));
}

/* sin and cos of 2 pi f for f in [0, 1): quadrant from 4f, then a Taylor
 * polynomial on x = (4f - q - 1/2) pi / 2 in [-pi/4, pi/4]. */
FT_HD void ft_philox_sincos2pi(float f, float *s_out, float *c_out) {
    float f4 = FT_MUL(f, 4.0f); /* exact */
    int q = (int)f4;            /* 0..3 */
    float r = FT_SUB(FT_SUB(f4, (float)q), 0.5f); /* exact, in [-0.5, 0.5) */
    float x = FT_MUL(r, 1.57079632679f);
    float x2 = FT_MUL(x, x);
    float sp = FT_FMA(x2, 2.75573192e-06f, -1.98412698e-04f);
    sp = FT_FMA(x2, sp, 8.33333333e-03f);
    sp = FT_FMA(x2, sp, -1.66666667e-01f);
    float sx = FT_FMA(FT_MUL(x, x2), sp, x);
    float cp = FT_FMA(x2, -2.75573192e-07f, 2.48015873e-05f);
    cp = FT_FMA(x2, cp, -1.38888889e-03f);
    cp = FT_FMA(x2, cp, 4.16666667e-02f);
    cp = FT_FMA(x2, cp, -0.5f);
    float cx = FT_FMA(x2, cp, 1.0f);
    /* angle = (q + 1/2) pi/2 + x; with a = pi/4 + x:
     * sin(a) = (cx + sx) / sqrt2, cos(a) = (cx - sx) / sqrt2. */
    float sa = FT_MUL(FT_ADD(cx, sx), 0.707106781f);
    float ca = FT_MUL(FT_SUB(cx, sx), 0.707106781f);
    float s, c;
    switch (q) {
    case 0: s = sa; c = ca; break;
    case 1: s = ca; c = -sa; break;
    case 2: s = -sa; c = -ca; break;
    default: s = -ca; c = sa; break;
    }
    *s_out = s;
    *c_out = c;
}

/* Four normals of block j for the 64-bit image seed. */
FT_HD void ft_philox_normal4(uint64_t seed, uint64_t j, float out[4]) {
    ft_philox_u4 ctr;
    ctr.v[0] = (uint32_t)j;
    ctr.v[1] = (uint32_t)(j >> 32);
    ctr.v[2] = 0;
    ctr.v[3] = 0;
    ft_philox_u4 r = ft_philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
    for (int pair = 0; pair < 2; pair++) {
        float u = FT_MUL((float)((r.v[2 * pair] >> 8) + 1u), 5.9604644775390625e-08f);
        float f = FT_MUL((float)(r.v[2 * pair + 1] >> 8), 5.9604644775390625e-08f);
        float rho = FT_SQRT(FT_MUL(-2.0f, ft_philox_log(u)));
        float s, c;
        ft_philox_sincos2pi(f, &s, &c);
        out[2 * pair] = FT_MUL(rho, c);
        out[2 * pair + 1] = FT_MUL(rho, s);
    }
}

#endif /* FT_PHILOX_H */
