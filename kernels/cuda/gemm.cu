/* kernels/cuda/gemm.cu — cuBLASLt GEMMs with fused epilogues, casts.
 *
 * Reference: kernels/cpu/gemm.c. The engine's row-major y[M, N] = x[M, K] W^T
 * (+ bias) is, in cuBLAS's column-major terms, D[N, M] = W^T-as-stored ... i.e.
 * op(A) = T with A = W stored [K, N] (ld K), B = x stored [K, M] (ld K),
 * D = y stored [N, M] (ld N); the bias runs along D's rows (length N), which
 * is what CUBLASLT_EPILOGUE_BIAS broadcasts.
 *
 * Every distinct problem (shape, types, epilogue, pointer alignments) gets
 * its descriptors and heuristic algorithm once; later calls, and graph
 * capture, only set the bias pointer and enqueue. The workspace is the
 * backend's fixed one. When cuBLASLt offers no fused kernel for an epilogue
 * (e.g. an fp32 bias with a bf16 output on some versions), the GEMM runs
 * plain and bias_act_kernel applies bias and activation afterwards: same
 * function, one extra pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.cuh"

/* ---- epilogue kernel (also SiLU, which cuBLASLt lacks) ---- */

__device__ __forceinline__ float gelu_tanh(float x) {
    const float k_beta = 0.7978845608028654f; /* sqrt(2/pi) */
    const float k_kappa = 0.044715f;
    float inner = k_beta * (x + k_kappa * x * x * x);
    return 0.5f * x * (1.0f + tanhf(inner));
}

__device__ __forceinline__ float apply_epi(float v, int epi) {
    if (epi == FT_EPI_GELU_TANH) return gelu_tanh(v);
    if (epi == FT_EPI_SILU) return v / (1.0f + expf(-v));
    return v;
}

template <typename TD>
__global__ void bias_act_kernel(TD *d, const float *bias, int m, int n, int ldc, int epi) {
    CU_FOR(idx, (size_t)m * n) {
        int i = (int)(idx % (size_t)m);
        size_t j = idx / (size_t)m;
        TD *p = d + j * (size_t)ldc + i;
        float v = act_to_f<TD>(*p);
        if (bias) v += bias[i];
        *p = f_to_act<TD>(apply_epi(v, epi));
    }
}

cudaError_t launch_bias_act(void *d, int d_is_act, ft_dtype act, const float *bias, int m, int n, int ldc,
                            ft_epilogue epi, cudaStream_t stream) {
    if (m <= 0 || n <= 0) return cudaSuccess;
    if (!bias && epi == FT_EPI_NONE) return cudaSuccess;
    unsigned blocks = cu_blocks((size_t)m * n, 256);
    if (blocks > 65536u) blocks = 65536u;
    if (!d_is_act) {
        FT_LAUNCH(blocks, 256, 0, stream, bias_act_kernel<float>)((float *)d, bias, m, n, ldc, (int)epi);
    } else {
        CU_ACT_DISPATCH(act, FT_LAUNCH(blocks, 256, 0, stream, bias_act_kernel<T>)((T *)d, bias, m, n, ldc, (int)epi));
    }
    return cudaGetLastError();
}

/* ---- casts ---- */

template <typename TD, typename TS> __global__ void cast_kernel(TD *dst, const TS *src, size_t n) {
    CU_FOR(i, n) dst[i] = f_to_act<TD>(act_to_f<TS>(src[i]));
}

cudaError_t launch_cast(void *dst, int dst_is_act, const void *src, int src_is_act, ft_dtype act, size_t n,
                        cudaStream_t stream) {
    if (!n) return cudaSuccess;
    if (dst_is_act == src_is_act) {
        if (dst == src) return cudaSuccess;
        size_t esz = dst_is_act ? 2 : 4;
        return cudaMemcpyAsync(dst, src, n * esz, cudaMemcpyDeviceToDevice, stream);
    }
    unsigned blocks = cu_blocks(n, 256);
    if (blocks > 65536u) blocks = 65536u;
    if (dst_is_act) {
        CU_ACT_DISPATCH(act, FT_LAUNCH(blocks, 256, 0, stream, cast_kernel<T, float>)((T *)dst, (const float *)src, n));
    } else {
        CU_ACT_DISPATCH(act, FT_LAUNCH(blocks, 256, 0, stream, cast_kernel<float, T>)((float *)dst, (const T *)src, n));
    }
    return cudaGetLastError();
}

void cu_cast(ft_backend *be, void *dst, ft_buf_type dst_type, const void *src, ft_buf_type src_type, size_t n) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_cast(dst, dst_type == FT_BUF_ACT, src, src_type == FT_BUF_ACT, c->act, n, c->stream));
}

/* ---- cuBLASLt problem cache ---- */

static void entry_release(cu_gemm_entry *e) {
    if (!e->valid) return;
    if (e->la) cublasLtMatrixLayoutDestroy(e->la);
    if (e->lb) cublasLtMatrixLayoutDestroy(e->lb);
    if (e->lc) cublasLtMatrixLayoutDestroy(e->lc);
    if (e->desc) cublasLtMatmulDescDestroy(e->desc);
    memset(e, 0, sizeof *e);
}

void cu_gemm_cache_free(cu_impl *c) {
    if (!c->gemm) return;
    for (int i = 0; i < CU_GEMM_CACHE; i++) entry_release(&c->gemm[i]);
}

static int same_key(const cu_gemm_entry *a, const cu_gemm_entry *b) {
    return a->transa == b->transa && a->transb == b->transb && a->m == b->m && a->n == b->n && a->k == b->k &&
           a->lda == b->lda && a->ldb == b->ldb && a->ldc == b->ldc && a->c_type == b->c_type && a->act == b->act && a->epi == b->epi &&
           a->has_bias == b->has_bias && a->bias_act == b->bias_act && a->align_a == b->align_a &&
           a->align_b == b->align_b && a->align_c == b->align_c && a->align_bias == b->align_bias;
}

/* Builds descriptors and asks the heuristic for one algorithm; fused selects
 * whether the bias / GELU epilogue is requested from cuBLASLt. Returns 1 on
 * success (e filled), 0 when cuBLASLt has no algorithm for it. */
static int entry_build(ft_backend *be, cu_gemm_entry *e, int fused, const void *bias) {
    cu_impl *c = cu_of(be);
    cublasOperation_t ta = e->transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = e->transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cudaDataType_t dt = e->c_type ? c->act_cuda : CUDA_R_32F;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    if (fused) {
        if (e->epi == FT_EPI_GELU_TANH) epi = e->has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
        else if (e->has_bias) epi = CUBLASLT_EPILOGUE_BIAS;
    }
    cublasLtMatmulPreference_t pref = NULL;
    int ok = cublasLtMatmulDescCreate(&e->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS;
    ok = ok && cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == 0;
    ok = ok && cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == 0;
    ok = ok && cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == 0;
    if (ok && (epi == CUBLASLT_EPILOGUE_BIAS || epi == CUBLASLT_EPILOGUE_GELU_BIAS)) {
        int32_t bt = e->bias_act ? (int32_t)c->act_cuda : (int32_t)CUDA_R_32F;
        ok = cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt) == 0;
        ok = ok && cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) == 0;
    }
    /* stored shapes: op N -> rows x cols = m x k; op T -> k x m */
    uint64_t ar = e->transa ? e->k : e->m, ac = e->transa ? e->m : e->k;
    uint64_t br = e->transb ? e->n : e->k, bc = e->transb ? e->k : e->n;
    ok = ok && cublasLtMatrixLayoutCreate(&e->la, c->act_cuda, ar, ac, e->lda) == 0;
    ok = ok && cublasLtMatrixLayoutCreate(&e->lb, c->act_cuda, br, bc, e->ldb) == 0;
    ok = ok && cublasLtMatrixLayoutCreate(&e->lc, dt, e->m, e->n, e->ldc) == 0;
    ok = ok && cublasLtMatmulPreferenceCreate(&pref) == 0;
    uint64_t ws = c->lt_ws_bytes;
    uint32_t al_a = (uint32_t)e->align_a, al_b = (uint32_t)e->align_b, al_c = (uint32_t)e->align_c;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) == 0;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                                    sizeof al_a) == 0;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                                    sizeof al_b) == 0;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                                    sizeof al_c) == 0;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                                    sizeof al_c) == 0;
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    memset(&res, 0, sizeof res);
    if (ok) {
        cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(c->lt, e->desc, e->la, e->lb, e->lc, e->lc, pref, 1, &res,
                                                          &n_res);
        ok = s == CUBLAS_STATUS_SUCCESS && n_res > 0 && res.state == CUBLAS_STATUS_SUCCESS;
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (!ok) {
        cu_gemm_entry key = *e;
        key.valid = 1; /* so entry_release frees what was made */
        entry_release(&key);
        e->desc = NULL;
        e->la = e->lb = e->lc = NULL;
        return 0;
    }
    e->algo = res.algo;
    e->workspace = res.workspaceSize;
    e->fused = fused;
    e->valid = 1;
    /* FT_GEMM_DEBUG=1: which problems got a fused epilogue (cuBLASLt documents the bias in D's type: act-output
     * GEMMs take the act copy of an FT_WEIGHT_BIAS; any other f32 bias with an act output may be refused and
     * then runs as the plain GEMM + bias_act_kernel) */
    if (getenv("FT_GEMM_DEBUG"))
        fprintf(stderr, "gemm m=%d n=%d k=%d out=%s epilogue=%d bias=%s fused=%d workspace=%zu\n", e->m, e->n, e->k,
                e->c_type ? "act" : "f32", e->epi, !e->has_bias ? "none" : e->bias_act ? "act" : "f32", fused,
                (size_t)res.workspaceSize);
    return 1;
}

void cu_matmul(ft_backend *be, int transa, int transb, int m, int n, int k, const void *A, int lda, const void *B,
               int ldb, void *D, int ldc, int d_is_act, const float *bias, ft_epilogue epi) {
    cu_impl *c = cu_of(be);
    if (m <= 0 || n <= 0) return;
    if (!cu_enter(be)) return;
    if (k <= 0) { /* empty reduction: D = epi(bias) */
        size_t esz = d_is_act ? 2 : 4;
        for (int j = 0; j < n; j++)
            if (!CU_CHECK(be, cudaMemsetAsync((char *)D + (size_t)j * ldc * esz, 0, (size_t)m * esz, c->stream))) return;
        CU_CHECK(be, launch_bias_act(D, d_is_act, c->act, bias, m, n, ldc, epi, c->stream));
        return;
    }
    cu_gemm_entry key;
    memset(&key, 0, sizeof key);
    key.transa = transa;
    key.transb = transb;
    key.m = m;
    key.n = n;
    key.k = k;
    key.lda = lda;
    key.ldb = ldb;
    key.ldc = ldc;
    key.c_type = d_is_act;
    key.act = (int)c->act;
    key.epi = (int)epi;
    key.has_bias = bias != NULL;
    /* an act-output GEMM takes the bias in the output's type when the weight has an act copy */
    const void *bias_act = bias && d_is_act ? cu_bias_lookup(bias) : NULL;
    const void *fused_bias = bias_act ? bias_act : (const void *)bias;
    key.bias_act = bias_act != NULL;
    key.align_a = cu_align_of(A);
    key.align_b = cu_align_of(B);
    key.align_c = cu_align_of(D);
    key.align_bias = bias ? cu_align_of(fused_bias) : 0;
    cu_gemm_entry *e = NULL;
    for (int i = 0; i < CU_GEMM_CACHE && !e; i++)
        if (c->gemm[i].valid && same_key(&c->gemm[i], &key)) e = &c->gemm[i];
    if (!e) {
        e = &c->gemm[c->gemm_next];
        c->gemm_next = (c->gemm_next + 1) % CU_GEMM_CACHE;
        entry_release(e);
        *e = key;
        /* SiLU has no cuBLASLt epilogue: plain GEMM + bias_act_kernel */
        int can_fuse = epi != FT_EPI_SILU && (bias || epi != FT_EPI_NONE);
        if (!(can_fuse && entry_build(be, e, 1, fused_bias)) && !entry_build(be, e, 0, fused_bias)) {
            memset(e, 0, sizeof *e);
            ft_backend_fail(be,
                            "cuBLASLt has no algorithm for a %s GEMM m=%d n=%d k=%d (lda %d ldb %d ldc %d, "
                            "alignments %d/%d/%d)",
                            d_is_act ? "act-output" : "f32-output", m, n, k, lda, ldb, ldc, key.align_a,
                            key.align_b, key.align_c);
            return;
        }
    }
    if (e->fused && bias &&
        !CUBLAS_CHECK(be, cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &fused_bias,
                                                         sizeof fused_bias)))
        return;
    const float alpha = 1.0f, beta = 0.0f;
    if (!CUBLAS_CHECK(be, cublasLtMatmul(c->lt, e->desc, &alpha, A, e->la, B, e->lb, &beta, D, e->lc, D, e->lc,
                                         &e->algo, c->lt_ws, c->lt_ws_bytes, c->stream)))
        return;
    if (!e->fused) CU_CHECK(be, launch_bias_act(D, d_is_act, c->act, bias, m, n, ldc, epi, c->stream));
}

void cu_linear(ft_backend *be, void *y, ft_buf_type y_type, const void *x, const void *w, const float *bias, int M,
               int N, int K, ft_epilogue epi) {
    /* row-major y[M, N] = x[M, K] w[N, K]^T  <=>  col-major y[N, M] = w^T x^T */
    cu_matmul(be, 1, 0, N, M, K, w, K, x, K, y, N, y_type == FT_BUF_ACT, bias, epi);
}
