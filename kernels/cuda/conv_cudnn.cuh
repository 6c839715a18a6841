/* kernels/cuda/conv_cudnn.cuh — VAE convolutions through cuDNN on act NHWC
 * feature maps, fused bias and residual (see backend.h, fm_conv). Built with
 * FT_WITH_CUDNN (make finds cuDNN); without it cu_dnn_create fails and the
 * backend leaves the fm_* ops unset. */
#ifndef FT_CUDA_CONV_CUDNN_CUH
#define FT_CUDA_CONV_CUDNN_CUH

#include "common.cuh"

/* Creates the cuDNN handle on the backend's stream; 0 (+ reason) when cuDNN
 * is missing or fails. */
int cu_dnn_create(cu_impl *c, char *err, size_t err_size);
void cu_dnn_destroy(cu_impl *c);

size_t cu_fm_conv_workspace(ft_backend *be, int N, int Cin, int S, int Cout, int k, int pad, int up2x);
void cu_fm_conv(ft_backend *be, void *y, const void *x, const void *w, const float *bias, const void *residual, int N,
                int Cin, int S, int Cout, int k, int pad, int up2x, void *workspace, size_t workspace_bytes);
ft_status cu_upload_conv_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, int cout, int cin,
                                int k);

#endif
