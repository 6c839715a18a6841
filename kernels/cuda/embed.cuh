/* kernels/cuda/embed.cuh — timestep and label embeddings, patch embed with
 * the position embedding, unpatchify. */
#ifndef FT_CUDA_EMBED_CUH
#define FT_CUDA_EMBED_CUH

#include "common.cuh"

cudaError_t launch_timestep_embedding(float *out, const float *t, int N, int dim, cudaStream_t stream);
cudaError_t launch_embedding_lookup(float *out, const float *table, const int32_t *labels, int N, int D, int add,
                                    cudaStream_t stream);
cudaError_t launch_patch_embed(float *tokens, const float *x, int cx, int x_batch, const float *v, int cv,
                               const void *w, const float *bias, const float *pos, int N, int S, int p, int D,
                               ft_dtype act, cudaStream_t stream);
cudaError_t launch_unpatchify(float *img, const void *tok, int N, int S, int p, int c_full, int c_keep, ft_dtype act,
                              cudaStream_t stream);

void cu_timestep_embedding(ft_backend *be, float *out, const float *t, int N, int dim);
void cu_embedding_lookup(ft_backend *be, float *out, const float *table, const int32_t *labels, int N, int D,
                         int add);
void cu_patch_embed(ft_backend *be, float *tokens, const float *x, int cx, int x_batch, const float *v, int cv,
                    const void *w, const float *bias, const float *pos, int N, int S, int p, int D);
void cu_unpatchify(ft_backend *be, float *img, const void *tok, int N, int S, int p, int c_full, int c_keep);

#endif
