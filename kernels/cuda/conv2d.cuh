/* kernels/cuda/conv2d.cuh — 2-D convolution (stride 1, zero padding, optional
 * fused nearest 2x upsample) as chunked im2col + cuBLASLt GEMM. */
#ifndef FT_CUDA_CONV2D_CUH
#define FT_CUDA_CONV2D_CUH

#include "common.cuh"

/* col[k, pp] (act, ld np) = x'(ci, oy + ki - pad, ox + kj - pad) for output
 * pixels p0 .. p0 + np - 1 of one image; k = (ci * ksz + ki) * ksz + kj. */
cudaError_t launch_im2col(void *col, const float *x, int Cin, int S, int ksz, int pad, int up2x, size_t p0, size_t np,
                          ft_dtype act, cudaStream_t stream);

void cu_conv2d(ft_backend *be, float *y, const float *x, const void *w, const float *bias, int N, int Cin, int S,
               int Cout, int k, int pad, int up2x);

#endif
