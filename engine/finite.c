/* engine/finite.c — NaN / Inf scans (see finite.h). */
#include "finite.h"

#include <stdint.h>
#include <string.h>

#define BLOCK 4096

/* An element is non-finite when its exponent bits are all ones. */
#define SCAN(WORD, EXP_MASK)                                                          \
    do {                                                                              \
        const unsigned char *p = data;                                                \
        for (size_t b = 0; b < n; b += BLOCK) {                                       \
            size_t m = n - b < BLOCK ? n - b : BLOCK;                                 \
            WORD any = 0;                                                             \
            for (size_t i = 0; i < m; i++) {                                          \
                WORD w;                                                               \
                memcpy(&w, p + (b + i) * sizeof w, sizeof w);                         \
                any |= (WORD)((w & EXP_MASK) == EXP_MASK);                            \
            }                                                                         \
            if (!any) continue;                                                       \
            for (size_t i = 0; i < m; i++) {                                          \
                WORD w;                                                               \
                memcpy(&w, p + (b + i) * sizeof w, sizeof w);                         \
                if ((w & EXP_MASK) == EXP_MASK) return b + i;                         \
            }                                                                         \
        }                                                                             \
        return n;                                                                     \
    } while (0)

size_t finite_scan_f32(const void *data, size_t n) { SCAN(uint32_t, 0x7F800000u); }

static size_t scan_f16(const void *data, size_t n) { SCAN(uint16_t, 0x7C00u); }

static size_t scan_bf16(const void *data, size_t n) { SCAN(uint16_t, 0x7F80u); }

size_t finite_scan(const void *data, ft_dtype dtype, size_t n) {
    switch (dtype) {
    case FT_DTYPE_F16: return scan_f16(data, n);
    case FT_DTYPE_BF16: return scan_bf16(data, n);
    default: return finite_scan_f32(data, n);
    }
}

const char *finite_kind(const void *data, ft_dtype dtype, size_t i) {
    const unsigned char *p = data;
    int nan, neg;
    if (dtype == FT_DTYPE_F32) {
        uint32_t w;
        memcpy(&w, p + 4 * i, 4);
        nan = (w & 0x7FFFFFu) != 0, neg = (w >> 31) != 0;
    } else {
        uint16_t w;
        memcpy(&w, p + 2 * i, 2);
        nan = (w & (dtype == FT_DTYPE_F16 ? 0x3FFu : 0x7Fu)) != 0, neg = (w >> 15) != 0;
    }
    return nan ? "NaN" : neg ? "-Inf" : "+Inf";
}
