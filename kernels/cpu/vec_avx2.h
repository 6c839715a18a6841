/* kernels/cpu/vec_avx2.h — e^x, GELU and SiLU on 8 floats with AVX2 + FMA
 * intrinsics, for the loops that run only where the own micro-kernels run
 * (CPUs with AVX2 + FMA, AVX-512 ones included): the packed linear layers'
 * epilogue and the attention's softmax. The same Cephes polynomial as vexpf
 * (vec_math.h) with fused multiply-adds, and 1 / d as a reciprocal estimate
 * plus one Newton step instead of a division: the GELU epilogue then costs
 * about half (the division was its bottleneck; the portable clones cannot
 * fuse, the library is built as ISO C, which turns fp-contract off). Every
 * AVX2 and AVX-512 CPU gives the same bits. */
#ifndef FT_CPU_VEC_AVX2_H
#define FT_CPU_VEC_AVX2_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2_FMA __attribute__((target("avx2,fma")))

/* e^x within 2 ulp, x clamped to [-87.3, 88.3] (NaN: e^-87.3, as vexpf). */
static inline AVX2_FMA __m256 vexp8(__m256 x) {
    const __m256 shifter = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23: round to nearest */
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f)); /* maxps returns its second operand for a NaN */
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3f));
    __m256 r = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), shifter), shifter);
    __m256 f = _mm256_fnmadd_ps(r, _mm256_set1_ps(0.693359375f), x);
    f = _mm256_fmadd_ps(r, _mm256_set1_ps(2.12194440e-4f), f);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, f), f, _mm256_add_ps(f, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(r), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* x / (1 + e^y): the reciprocal of 1 + e^y (at most ~2.2e38 after the clamp; rcpps gives 0 there, so the result
 * is then a signed zero) refined by one Newton step. */
static inline AVX2_FMA __m256 div_one_plus_exp8(__m256 x, __m256 y) {
    __m256 d = _mm256_add_ps(_mm256_set1_ps(1.0f), vexp8(y));
    __m256 r = _mm256_rcp_ps(d);
    r = _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.0f)));
    return _mm256_mul_ps(x, r);
}

/* GELU, tanh form: 0.5 x (1 + tanh(u)) = x / (1 + e^{-2u}), u = sqrt(2/pi) (x + 0.044715 x^3). */
static inline AVX2_FMA __m256 vgelu8(__m256 x) {
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 m2u = _mm256_mul_ps(x, _mm256_fmadd_ps(x2, _mm256_set1_ps(-0.0713548162726f),
                                                  _mm256_set1_ps(-1.5957691216057308f)));
    return div_one_plus_exp8(x, m2u);
}

static inline AVX2_FMA __m256 vsilu8(__m256 x) { return div_one_plus_exp8(x, _mm256_sub_ps(_mm256_setzero_ps(), x)); }
#endif

#endif
