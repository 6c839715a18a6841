/* kernels/cuda/rng.cu — per-image Philox4x32-10 + Box-Muller noise.
 *
 * Reference: kernels/cpu/rng.c. Both compile the one definition in
 * kernels/common/philox.h, whose float steps are explicit correctly-rounded
 * intrinsics under nvcc (__fmaf_rn, __fmul_rn, __fsqrt_rn, ...), so every
 * value is bit-identical. One thread per block of four normals. */
#include "../common/philox.h"
#include "rng.cuh"

__global__ void randn_kernel(float *out, size_t per_image, int n_images, const uint64_t *seeds) {
    const size_t blocks = (per_image + 3) / 4;
    CU_FOR(i, (size_t)n_images * blocks) {
        size_t b = i / blocks, j = i % blocks;
        float r[4];
        ft_philox_normal4(seeds[b], j, r);
        float *dst = out + b * per_image;
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (4 * j + e < per_image) dst[4 * j + e] = r[e];
    }
}

cudaError_t launch_randn(float *out, size_t per_image, int n_images, const uint64_t *seeds, cudaStream_t st) {
    size_t total = (size_t)(n_images > 0 ? n_images : 0) * ((per_image + 3) / 4);
    if (!total) return cudaSuccess;
    unsigned b = cu_blocks(total, 256);
    FT_LAUNCH(b > 65536u ? 65536u : b, 256, 0, st, randn_kernel)(out, per_image, n_images, seeds);
    return cudaGetLastError();
}

void cu_randn(ft_backend *be, float *out, size_t per_image, int n_images, const uint64_t *seeds) {
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_randn(out, per_image, n_images, seeds, cu_of(be)->stream));
}
