/* kernels/cuda/fmap.cuh — VAE feature maps [N, S, S, C] in act (NHWC): layout
 * changes, residual add, nearest-2x upsample (see backend.h, fm_*). */
#ifndef FT_CUDA_FMAP_CUH
#define FT_CUDA_FMAP_CUH

#include "common.cuh"

/* y (fm) = act(x[n, c, :, :] * scale), x f32 NCHW. */
cudaError_t launch_fm_from_nchw(void *y, const float *x, int N, int C, int S, float scale, ft_dtype act,
                                cudaStream_t stream);
/* y[n, c, :, :] (f32 NCHW) = x (fm). */
cudaError_t launch_fm_to_nchw(float *y, const void *x, int N, int C, int S, ft_dtype act, cudaStream_t stream);
/* y = a + b over n act values (rounded once). */
cudaError_t launch_fm_add(void *y, const void *a, const void *b, size_t n, ft_dtype act, cudaStream_t stream);
/* y [N, 2S, 2S, C] = nearest 2x upsample of x [N, S, S, C]. */
cudaError_t launch_fm_upsample2x(void *y, const void *x, int N, int S, int C, ft_dtype act, cudaStream_t stream);

void cu_fm_from_nchw(ft_backend *be, void *y, const float *x, int N, int C, int S, float scale);
void cu_fm_to_nchw(ft_backend *be, float *y, const void *x, int N, int C, int S);
void cu_fm_add(ft_backend *be, void *y, const void *a, const void *b, size_t n);

#endif
