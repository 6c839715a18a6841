/* kernels/cuda/elementwise.cuh — f32 element-wise ops: SiLU, add, scale,
 * transpose, guidance combine, ODE updates, the fused network-call tail,
 * uint8 mapping. */
#ifndef FT_CUDA_ELEMENTWISE_CUH
#define FT_CUDA_ELEMENTWISE_CUH

#include "common.cuh"

cudaError_t launch_silu(float *y, const float *x, size_t n, cudaStream_t stream);
cudaError_t launch_add(float *y, const float *a, const float *b, size_t n, cudaStream_t stream);
cudaError_t launch_scale(float *y, const float *x, float s, size_t n, cudaStream_t stream);
cudaError_t launch_transpose(float *y, const float *x, int batch, int C, int R, cudaStream_t stream);
cudaError_t launch_cfg_combine(float *v, const float *raw, int B, int C, int HW, const float *scale, int guided,
                               cudaStream_t stream);
cudaError_t launch_euler_update(float *out, const float *x, const float *d, float h, size_t n, cudaStream_t stream);
cudaError_t launch_heun_update(float *out, const float *x, const float *d, const float *e, float h, size_t n,
                               cudaStream_t stream);
cudaError_t launch_velocity_tail(float *v, const float *raw, const float *base, int B, int guided, int C, int HW,
                                 const float *scale, int guided_channels, float *x_out, const float *x_in,
                                 const float *d, float h, cudaStream_t stream);
cudaError_t launch_to_rgb8(uint8_t *rgb, const float *img, int N, int C, int S, cudaStream_t stream);
/* y[n, co, :] += bias[co] over [N, Cout, P] (the conv bias). */
cudaError_t launch_channel_bias(float *y, const float *bias, int N, int Cout, size_t P, cudaStream_t stream);

/* cudaSuccess when this device can run the build's kernels (checked at
 * backend creation: no compatible SASS/PTX gives cudaErrorNoKernelImageForDevice). */
cudaError_t kernels_probe(void);

void cu_silu(ft_backend *be, float *y, const float *x, size_t n);
void cu_add(ft_backend *be, float *y, const float *a, const float *b, size_t n);
void cu_scale(ft_backend *be, float *y, const float *x, float s, size_t n);
void cu_transpose(ft_backend *be, float *y, const float *x, int batch, int C, int R);
void cu_cfg_combine(ft_backend *be, float *v, const float *raw, int B, int C, int HW, const float *scale, int guided);
void cu_euler_update(ft_backend *be, float *out, const float *x, const float *d, float h, size_t n);
void cu_heun_update(ft_backend *be, float *out, const float *x, const float *d, const float *e, float h, size_t n);
void cu_velocity_tail(ft_backend *be, float *v, const float *raw, const float *base, int B, int guided, int C, int HW,
                      const float *scale, int guided_channels, float *x_out, const float *x_in, const float *d,
                      float h);
void cu_to_rgb8(ft_backend *be, uint8_t *rgb, const float *img, int N, int C, int S);

#endif
