/* kernels/cuda/gemm.cuh — GEMMs through cuBLASLt (bf16/fp16 operands, fp32
 * accumulation, bias and tanh-GELU epilogues, heuristics cached per shape)
 * and the f32 <-> act casts. */
#ifndef FT_CUDA_GEMM_CUH
#define FT_CUDA_GEMM_CUH

#include "common.cuh"

/* Column-major D[m, n] (ldc) = op(A)[m, k] op(B)[k, n] (+ bias[m]) then the
 * epilogue; A and B are act, D is act (d_is_act) or f32. transa/transb are 0
 * (N) or 1 (T). Enqueued on the backend's stream; errors are sticky. */
void cu_matmul(ft_backend *be, int transa, int transb, int m, int n, int k, const void *A, int lda, const void *B,
               int ldb, void *D, int ldc, int d_is_act, const float *bias, ft_epilogue epi);

/* Launchers. */
/* d[j * ldc + i] = epi(d[...] + bias[i]) for i < m, j < n (bias may be NULL). */
cudaError_t launch_bias_act(void *d, int d_is_act, ft_dtype act, const float *bias, int m, int n, int ldc,
                            ft_epilogue epi, cudaStream_t stream);
cudaError_t launch_cast(void *dst, int dst_is_act, const void *src, int src_is_act, ft_dtype act, size_t n,
                        cudaStream_t stream);

/* Backend ops (kernels/backend.h). */
void cu_linear(ft_backend *be, void *y, ft_buf_type y_type, const void *x, const void *w, const float *bias, int M,
               int N, int K, ft_epilogue epi);
void cu_cast(ft_backend *be, void *dst, ft_buf_type dst_type, const void *src, ft_buf_type src_type, size_t n);

/* Frees the cached cuBLASLt descriptors. */
void cu_gemm_cache_free(cu_impl *c);

#include "registry.cuh" /* cu_bias_lookup */

#endif
