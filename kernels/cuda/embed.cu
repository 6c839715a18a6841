/* kernels/cuda/embed.cu — timestep / label embeddings, patch embed, unpatchify.
 *
 * Reference: kernels/cpu/embed.c, reproduced operation for operation:
 *  - timestep: freq_k = expf(-ln(10000) * k / half) in float, arg = t * freq,
 *    row = [cos(arg) | sin(arg)] (+ a 0 for odd dim); CUDA's expf/cosf/sinf
 *    differ from glibc's by <= 2 ulp;
 *  - label lookup: out = (add ? out : 0) + table[label] — labels are read from
 *    device memory (they change between graph replays);
 *  - patch embed: the p x p stride-p conv as a dot product per (token, d)
 *    over the im2col patch (channels of x first, then v), accumulated in k
 *    order, then (acc + bias[d]) + pos[t, d]; w is the act-typed weight
 *    [D, (cx + cv) p p]. A block stages up to 8 token patches in shared memory
 *    and reads each weight row once for all of them;
 *  - unpatchify: img[n, c, y, x] = tok[n, (y/p)*g + x/p, ((y%p)*p + x%p)*c_full + c]. */
#include <math.h>

#include "embed.cuh"

__global__ void timestep_kernel(float *out, const float *t, int N, int dim) {
    const int half = dim / 2;
    CU_FOR(i, (size_t)N * dim) {
        int n = (int)(i / (size_t)dim), k = (int)(i % (size_t)dim);
        float v = 0.0f;
        if (k < 2 * half) {
            int kk = k < half ? k : k - half;
            float freq = expf(-9.210340371976184f * (float)kk / (float)half);
            float arg = t[n] * freq;
            v = k < half ? cosf(arg) : sinf(arg);
        }
        out[i] = v;
    }
}

cudaError_t launch_timestep_embedding(float *out, const float *t, int N, int dim, cudaStream_t stream) {
    if (N <= 0 || dim <= 0) return cudaSuccess;
    FT_LAUNCH(cu_blocks((size_t)N * dim, 256), 256, 0, stream, timestep_kernel)(out, t, N, dim);
    return cudaGetLastError();
}

__global__ void embedding_kernel(float *out, const float *table, const int32_t *labels, int N, int D, int add) {
    CU_FOR(i, (size_t)N * D) {
        int n = (int)(i / (size_t)D), d = (int)(i % (size_t)D);
        float v = table[(size_t)labels[n] * D + d];
        out[i] = add ? __fadd_rn(out[i], v) : v;
    }
}

cudaError_t launch_embedding_lookup(float *out, const float *table, const int32_t *labels, int N, int D, int add,
                                    cudaStream_t stream) {
    if (N <= 0 || D <= 0) return cudaSuccess;
    FT_LAUNCH(cu_blocks((size_t)N * D, 256), 256, 0, stream, embedding_kernel)(out, table, labels, N, D, add);
    return cudaGetLastError();
}

#define PE_TOK 8
#define PE_THREADS 128
#define PE_SMEM_FLOATS 12288 /* 48 KB of staged patches */

template <typename T>
__global__ void __launch_bounds__(PE_THREADS)
    patch_embed_kernel(float *tokens, const float *x, int cx, int x_batch, const float *v, int cv, const T *w,
                       const float *bias, const float *pos, int N, int S, int p, int D, int ntok) {
    FT_DYNAMIC_SHARED(float, patch, 16); /* [ntok][K] */
    const int g = S / p, Ttok = g * g, cin = cx + cv, K = cin * p * p;
    const size_t rows = (size_t)N * Ttok, row0 = (size_t)blockIdx.x * ntok;
    const size_t plane = (size_t)S * S;
    for (int i = threadIdx.x; i < ntok * K; i += PE_THREADS) {
        int t = i / K, k = i - t * K;
        size_t row = row0 + t;
        float val = 0.0f;
        if (row < rows) {
            int n = (int)(row / Ttok), tok = (int)(row % Ttok);
            int r = tok / g, c = tok % g;
            int ch = k / (p * p), pi = (k / p) % p, qi = k % p;
            const float *src = ch < cx ? x + ((size_t)(n % x_batch) * cx + ch) * plane
                                       : v + ((size_t)n * cv + (ch - cx)) * plane;
            val = src[(size_t)(r * p + pi) * S + (c * p + qi)];
        }
        patch[i] = val;
    }
    __syncthreads();
    int nvalid = (int)(rows - row0 < (size_t)ntok ? rows - row0 : (size_t)ntok);
    for (int d = threadIdx.x; d < D; d += PE_THREADS) {
        float acc[PE_TOK];
#pragma unroll
        for (int t = 0; t < PE_TOK; t++) acc[t] = 0.0f;
        const T *wr = w + (size_t)d * K;
        for (int k = 0; k < K; k++) {
            float wk = act_to_f<T>(wr[k]);
#pragma unroll
            for (int t = 0; t < PE_TOK; t++)
                if (t < nvalid) acc[t] += wk * patch[t * K + k];
        }
#pragma unroll
        for (int t = 0; t < PE_TOK; t++) {
            if (t < nvalid) {
                size_t row = row0 + t;
                int tok = (int)(row % Ttok);
                tokens[row * D + d] = (acc[t] + bias[d]) + pos[(size_t)tok * D + d];
            }
        }
    }
}

cudaError_t launch_patch_embed(float *tokens, const float *x, int cx, int x_batch, const float *v, int cv,
                               const void *w, const float *bias, const float *pos, int N, int S, int p, int D,
                               ft_dtype act, cudaStream_t stream) {
    if (N <= 0 || D <= 0) return cudaSuccess;
    if (p <= 0 || S % p || x_batch <= 0) return cudaErrorInvalidValue;
    const int g = S / p, K = (cx + cv) * p * p;
    if (K > PE_SMEM_FLOATS) return cudaErrorInvalidValue;
    int ntok = PE_SMEM_FLOATS / K;
    if (ntok > PE_TOK) ntok = PE_TOK;
    const size_t rows = (size_t)N * g * g;
    const size_t blocks = (rows + ntok - 1) / ntok;
    if (blocks > 0x7fffffffu) return cudaErrorInvalidValue;
    const size_t smem = (size_t)ntok * K * sizeof(float);
    CU_ACT_DISPATCH(act, FT_LAUNCH((unsigned)blocks, PE_THREADS, smem, stream, patch_embed_kernel<T>)(
                             tokens, x, cx, x_batch, v, cv, (const T *)w, bias, pos, N, S, p, D, ntok));
    return cudaGetLastError();
}

template <typename T>
__global__ void unpatchify_kernel(float *img, const T *tok, int N, int S, int p, int c_full, int c_keep) {
    const int g = S / p, Ttok = g * g, F = p * p * c_full;
    CU_FOR(i, (size_t)N * c_keep * S * S) {
        int xx = (int)(i % (size_t)S);
        size_t rest = i / (size_t)S;
        int y = (int)(rest % (size_t)S);
        rest /= (size_t)S;
        int ch = (int)(rest % (size_t)c_keep);
        size_t n = rest / (size_t)c_keep;
        int r = y / p, pi = y % p, c = xx / p, qi = xx % p;
        img[i] = act_to_f<T>(tok[(n * Ttok + (size_t)(r * g + c)) * F + (size_t)(pi * p + qi) * c_full + ch]);
    }
}

cudaError_t launch_unpatchify(float *img, const void *tok, int N, int S, int p, int c_full, int c_keep, ft_dtype act,
                              cudaStream_t stream) {
    if (N <= 0 || c_keep <= 0 || S <= 0) return cudaSuccess;
    if (p <= 0 || S % p) return cudaErrorInvalidValue;
    unsigned blocks = cu_blocks((size_t)N * c_keep * S * S, 256);
    CU_ACT_DISPATCH(act, FT_LAUNCH(blocks, 256, 0, stream, unpatchify_kernel<T>)(img, (const T *)tok, N, S, p, c_full,
                                                                          c_keep));
    return cudaGetLastError();
}

void cu_timestep_embedding(ft_backend *be, float *out, const float *t, int N, int dim) {
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_timestep_embedding(out, t, N, dim, cu_of(be)->stream));
}

void cu_embedding_lookup(ft_backend *be, float *out, const float *table, const int32_t *labels, int N, int D,
                         int add) {
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_embedding_lookup(out, table, labels, N, D, add, cu_of(be)->stream));
}

void cu_patch_embed(ft_backend *be, float *tokens, const float *x, int cx, int x_batch, const float *v, int cv,
                    const void *w, const float *bias, const float *pos, int N, int S, int p, int D) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    if ((cx + cv) * p * p > PE_SMEM_FLOATS) {
        ft_backend_fail(be, "patch_embed: %d x %d x %d patches exceed the CUDA kernel's %d-element limit", cx + cv, p,
                        p, PE_SMEM_FLOATS);
        return;
    }
    CU_CHECK(be, launch_patch_embed(tokens, x, cx, x_batch, v, cv, w, bias, pos, N, S, p, D, c->act, c->stream));
}

void cu_unpatchify(ft_backend *be, float *img, const void *tok, int N, int S, int p, int c_full, int c_keep) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_unpatchify(img, tok, N, S, p, c_full, c_keep, c->act, c->stream));
}
