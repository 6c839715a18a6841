/* kernels/cuda/rng.cuh — the engine's Philox4x32-10 normal noise on the GPU,
 * bit-identical to the CPU backend (kernels/common/philox.h). */
#ifndef FT_CUDA_RNG_CUH
#define FT_CUDA_RNG_CUH

#include "common.cuh"

/* out[b * per_image + i] = normal i of image b from seeds[b] (device memory). */
cudaError_t launch_randn(float *out, size_t per_image, int n_images, const uint64_t *seeds, cudaStream_t stream);

void cu_randn(ft_backend *be, float *out, size_t per_image, int n_images, const uint64_t *seeds);

#endif
