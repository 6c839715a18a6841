/* kernels/cuda/norm.cuh — LayerNorm + adaLN modulate, gated residual fused
 * with the next LayerNorm, GroupNorm (+SiLU), row softmax. fp32 statistics
 * everywhere. */
#ifndef FT_CUDA_NORM_CUH
#define FT_CUDA_NORM_CUH

#include "common.cuh"

/* h (act) = LN(x) * (1 + scale[n]) + shift[n] over rows of D; see backend.h. */
cudaError_t launch_layernorm_modulate(void *h, const float *x, const float *shift, const float *scale,
                                      int mod_stride, int N, int T, int D, float eps, ft_dtype act,
                                      cudaStream_t stream);
/* x += gate[n] * a; then (h != NULL) h = LN(x) * (1 + next_scale) + next_shift. */
cudaError_t launch_gated_residual(float *x, const void *a, const float *gate, void *h, const float *next_shift,
                                  const float *next_scale, int mod_stride, int N, int T, int D, float eps,
                                  ft_dtype act, cudaStream_t stream);
/* GroupNorm over [N, C, HW]; partials is scratch of partial_floats floats. */
cudaError_t launch_group_norm(float *y, const float *x, const float *gamma, const float *beta, int N, int C, int HW,
                              int groups, float eps, int silu, float *partials, size_t partial_floats,
                              cudaStream_t stream);

/* The same on feature maps [N, HW, C] in act (NHWC). */
cudaError_t launch_group_norm_fm(void *y, const void *x, const float *gamma, const float *beta, int N, int C, int HW,
                                 int groups, float eps, int silu, float *partials, size_t partial_floats, ft_dtype act,
                                 cudaStream_t stream);

/* p[r, :] (act) = softmax(s[r, :] * scale) for rows of cols f32 values. */
cudaError_t launch_softmax_rows(void *p, const float *s, int rows, int cols, float scale, ft_dtype act,
                                cudaStream_t stream);

void cu_layernorm_modulate(ft_backend *be, void *h, const float *x, const float *shift, const float *scale,
                           int mod_stride, int N, int T, int D, float eps);
void cu_gated_residual(ft_backend *be, float *x, const void *a, const float *gate, void *h, const float *next_shift,
                       const float *next_scale, int mod_stride, int N, int T, int D, float eps);
void cu_group_norm(ft_backend *be, float *y, const float *x, const float *gamma, const float *beta, int N, int C,
                   int HW, int groups, float eps, int silu);
void cu_fm_group_norm(ft_backend *be, void *y, const void *x, const float *gamma, const float *beta, int N, int C,
                      int HW, int groups, float eps, int silu);

#endif
