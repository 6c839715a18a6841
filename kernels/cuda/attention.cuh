/* kernels/cuda/attention.cuh — fused multi-head softmax attention from a
 * packed qkv buffer (act), never materialising the T x T scores. */
#ifndef FT_CUDA_ATTENTION_CUH
#define FT_CUDA_ATTENTION_CUH

#include "common.cuh"

/* o[n, t, h*hd + e] = softmax(q k^T / sqrt(hd)) v, qkv[n, t, (which*H + h)*hd + e]
 * (see backend.h). Picks the tensor-core kernel (hd 72, T % 64 == 0, 16-byte
 * aligned) or the generic one (any hd <= 512, any T). smem_optin is the
 * device's opt-in shared-memory limit per block. */
cudaError_t launch_attention(void *o, const void *qkv, int N, int T, int H, int hd, ft_dtype act, size_t smem_optin,
                             cudaStream_t stream);
/* Raises the dynamic shared-memory limits of the attention kernels (once, at
 * backend creation, outside any graph capture). */
cudaError_t attention_init(size_t smem_optin);
/* 1 when launch_attention would take the tensor-core path. */
int attention_uses_mma(const void *o, const void *qkv, int T, int hd);

void cu_attention(ft_backend *be, void *o, const void *qkv, int N, int T, int H, int hd);

#endif
