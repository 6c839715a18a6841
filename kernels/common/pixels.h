/*
 * kernels/common/pixels.h — the value mapping of the pixel outputs, one
 * source for the CPU backend and the CUDA kernels (bit-identical: no fused
 * multiply-add, the CUDA side uses the correctly rounded intrinsics).
 *   RGBA8:    trunc(clamp(127.5 v + 128, 0, 255)), as to_rgb8 and torch's
 *             (127.5 v + 128).clamp(0, 255).to(uint8); NaN gives 0
 *   RGBA_F32: clamp(0.5 v + 0.5, 0, 1); NaN gives 0
 */
#ifndef FT_PIXELS_H
#define FT_PIXELS_H

#include <stdint.h>

#if defined(__CUDACC__)
#define FT_PIX_HD __host__ __device__ __forceinline__
#else
#define FT_PIX_HD static inline
#endif

/* clamp(a v + b, 0, hi) with a rounded product and a rounded sum; NaN gives 0. */
FT_PIX_HD float ft_pixel_affine(float v, float a, float b, float hi) {
#if defined(__CUDA_ARCH__)
    float x = __fadd_rn(__fmul_rn(a, v), b);
#else
    float x = a * v;
    x = x + b;
#endif
    return x > hi ? hi : (x >= 0.0f ? x : 0.0f);
}

FT_PIX_HD uint8_t ft_pixel_u8(float v) { return (uint8_t)ft_pixel_affine(v, 127.5f, 128.0f, 255.0f); }
FT_PIX_HD float ft_pixel_unit(float v) { return ft_pixel_affine(v, 0.5f, 0.5f, 1.0f); }

#endif
