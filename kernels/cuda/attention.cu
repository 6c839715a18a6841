/* kernels/cuda/attention.cu — fused softmax attention.
 *
 * Reference: kernels/cpu/attention.c. For sample n, head h, query i:
 *   s_j = (q_i . k_j) / sqrt(hd);  p_j = exp(s_j - max_j s_j);
 *   o_i = sum_j p_j v_j / sum_j p_j
 * with q, k, v read from the packed qkv rows [q(H*hd) | k(H*hd) | v(H*hd)].
 * Both kernels use the online (flash) form: a running max m, sum l and
 * accumulator rescaled by exp(m_old - m_new) per key tile — the same function
 * in exact arithmetic; scores never leave the chip.
 *
 * 1. fa_hd72_kernel: tensor cores (mma.sync m16n8k16, bf16 or fp16 operands,
 *    fp32 accumulators), for hd = 72 and T % 64 == 0 (SiT-XL/2: T = 256 at
 *    256 px, 1024 at 512 px). A block of 4 warps owns 64 queries of one
 *    (n, h); each warp 16 query rows. K/V stream through shared memory in
 *    tiles of 64 keys, double-buffered with cp.async. S = Q K^T contracts
 *    over hd padded to 80 (5 k16 steps; columns 72..79 of Q and K are zero in
 *    shared memory); O = P V needs no padding (72 = 9 n8 tiles). The
 *    probabilities P are rounded to the act type for the PV product (as
 *    FlashAttention does); max, sum and O stay fp32. Softmax runs in base 2
 *    with the scale folded in: exp(s - m) = exp2(s*log2e/sqrt(hd) - m').
 *    Shared rows are 88 elements (176 B) apart so ldmatrix's 8 row reads hit
 *    8 distinct 4-bank groups. Fragment layouts (PTX ISA, mma.m16n8k16):
 *      A: a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..)
 *      B: b0 (k 2t..2t+1, n g) b1 (k 2t+8.., n g)
 *      C: c0,c1 (g, 2t..2t+1) c2,c3 (g+8, 2t..)     g = lane/4, t = lane%4
 *    so an S accumulator pair of n8 tiles is directly the A fragment of P.
 * 2. attn_generic_kernel: any hd <= 512 and any T (tests use hd 8 and 24).
 *    CUDA cores, fp32 math: a block of 8 warps, 2 queries per warp,
 *    K/V tiles of 32 keys in shared memory (act, row pitch chosen so a warp's
 *    32 rows fall in 32 banks); lane j scores key j, the warp does the online
 *    softmax, then lanes split the head dim for P V.
 * 3. head dims of 256 and more (the VAE's mid attention: one head of 512 over
 *    the (latent side)^2 tokens) on tensor cores through cuBLASLt: S = Q K^T
 *    in f32, a row softmax to act (norm.cu), O = P V, one (n, h) at a time
 *    with S and P in the backend's im2col workspace (T^2 * 6 bytes: up to
 *    T = 3344 tokens); beyond that, or with FT_CUDA_ATTENTION_GEMM=0, the
 *    generic kernel. */
#include <math.h>

#include "attention.cuh"
#include "gemm.cuh"
#include "norm.cuh"
#include "ptx.cuh"

/* ---- tensor-core kernel for hd 72 ---- */

#define FA_HD 72
#define FA_HCH 9 /* 16-byte chunks per 72-element row */
#define FA_LDS 88
#define FA_BQ 64
#define FA_BK 64
#define FA_THREADS 128
#define FA_SMEM ((FA_BQ + 4 * FA_BK) * FA_LDS * 2) /* Q + 2 x (K, V), bytes */

template <typename T>
__global__ void __launch_bounds__(FA_THREADS)
    fa_hd72_kernel(T *__restrict__ o, const T *__restrict__ qkv, int Ttok, int H, float sl2) {
    FT_DYNAMIC_SHARED(unsigned char, fa_smem, 16);
    T *sQ = reinterpret_cast<T *>(fa_smem); /* [FA_BQ][FA_LDS] */
    T *sK = sQ + FA_BQ * FA_LDS;              /* [2][FA_BK][FA_LDS] */
    T *sV = sK + 2 * FA_BK * FA_LDS;          /* [2][FA_BK][FA_LDS] */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int q0 = blockIdx.x * FA_BQ, h = blockIdx.y, n = blockIdx.z;
    const int D = H * FA_HD;
    const size_t ld = 3 * (size_t)D;
    const T *qb = qkv + (size_t)n * Ttok * ld + (size_t)h * FA_HD;
    const T *kb = qb + D, *vb = qb + 2 * D;

    /* zero the padding columns 72..79 of Q and of both K buffers (never
     * written by the loads below, so they stay zero) */
    for (int r = tid; r < FA_BQ + 2 * FA_BK; r += FA_THREADS) {
        T *row = r < FA_BQ ? sQ + r * FA_LDS : sK + (r - FA_BQ) * FA_LDS;
        *reinterpret_cast<uint4 *>(row + FA_HD) = make_uint4(0u, 0u, 0u, 0u);
    }
    for (int i = tid; i < FA_BQ * FA_HCH; i += FA_THREADS) {
        int r = i / FA_HCH, c = i - r * FA_HCH;
        cp_async16(sQ + r * FA_LDS + c * 8, qb + (size_t)(q0 + r) * ld + c * 8);
    }
    auto load_kv = [&](int tile, int buf) {
        T *dk = sK + buf * FA_BK * FA_LDS, *dv = sV + buf * FA_BK * FA_LDS;
        const size_t r0 = (size_t)tile * FA_BK;
        for (int i = tid; i < FA_BK * FA_HCH; i += FA_THREADS) {
            int r = i / FA_HCH, c = i - r * FA_HCH;
            cp_async16(dk + r * FA_LDS + c * 8, kb + (r0 + r) * ld + c * 8);
            cp_async16(dv + r * FA_LDS + c * 8, vb + (r0 + r) * ld + c * 8);
        }
    };
    load_kv(0, 0);
    cp_async_commit(); /* group 0: Q and K/V tile 0 */

    const int n_tiles = Ttok / FA_BK;
    uint32_t qf[5][4];
    float acc[9][4];
#pragma unroll
    for (int t = 0; t < 9; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    for (int j = 0; j < n_tiles; j++) {
        if (j + 1 < n_tiles) {
            load_kv(j + 1, (j + 1) & 1);
            cp_async_commit();
            cp_async_wait<1>(); /* all but the newest group: tile j is in */
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (j == 0) {
#pragma unroll
            for (int kc = 0; kc < 5; kc++)
                ldsm_x4(qf[kc], sQ + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * FA_LDS + kc * 16 +
                                    (lane >> 4) * 8);
        }
        const T *Kt = sK + (j & 1) * FA_BK * FA_LDS;
        const T *Vt = sV + (j & 1) * FA_BK * FA_LDS;

        /* S[16 x 64] = Q K^T for this warp's rows */
        float s[8][4];
#pragma unroll
        for (int t = 0; t < 8; t++) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
#pragma unroll
        for (int kc = 0; kc < 5; kc++) {
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t b[4];
                ldsm_x4(b, Kt + (np * 16 + (lane & 7) + (lane >> 4) * 8) * FA_LDS + kc * 16 + ((lane >> 3) & 1) * 8);
                mma_m16n8k16<T>::run(s[2 * np], qf[kc], b[0], b[1]);
                mma_m16n8k16<T>::run(s[2 * np + 1], qf[kc], b[2], b[3]);
            }
        }

        /* online softmax; this thread holds rows g (c0, c1) and g + 8 (c2, c3),
         * the other columns of those rows are in the same quad */
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int t = 0; t < 8; t++) {
            mx0 = fmaxf(mx0, fmaxf(s[t][0], s[t][1]));
            mx1 = fmaxf(mx1, fmaxf(s[t][2], s[t][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m0, mx0 * sl2), mn1 = fmaxf(m1, mx1 * sl2);
        const float c0 = exp2f(m0 - mn0), c1 = exp2f(m1 - mn1); /* 0 on the first tile */
        m0 = mn0;
        m1 = mn1;
        l0 *= c0;
        l1 *= c1;
#pragma unroll
        for (int t = 0; t < 9; t++) {
            acc[t][0] *= c0;
            acc[t][1] *= c0;
            acc[t][2] *= c1;
            acc[t][3] *= c1;
        }
#pragma unroll
        for (int t = 0; t < 8; t++) {
            s[t][0] = exp2f(fmaf(s[t][0], sl2, -m0));
            s[t][1] = exp2f(fmaf(s[t][1], sl2, -m0));
            s[t][2] = exp2f(fmaf(s[t][2], sl2, -m1));
            s[t][3] = exp2f(fmaf(s[t][3], sl2, -m1));
            l0 += s[t][0] + s[t][1];
            l1 += s[t][2] + s[t][3];
        }

        /* O[16 x 72] += P V, keys in k16 steps */
#pragma unroll
        for (int kc = 0; kc < 4; kc++) {
            uint32_t a[4];
            a[0] = pack2<T>(s[2 * kc][0], s[2 * kc][1]);
            a[1] = pack2<T>(s[2 * kc][2], s[2 * kc][3]);
            a[2] = pack2<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]);
            a[3] = pack2<T>(s[2 * kc + 1][2], s[2 * kc + 1][3]);
            const T *vrow = Vt + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * FA_LDS;
#pragma unroll
            for (int dp = 0; dp < 4; dp++) {
                uint32_t b[4];
                ldsm_x4_t(b, vrow + dp * 16 + (lane >> 4) * 8);
                mma_m16n8k16<T>::run(acc[2 * dp], a, b[0], b[1]);
                mma_m16n8k16<T>::run(acc[2 * dp + 1], a, b[2], b[3]);
            }
            uint32_t b2[2];
            ldsm_x2_t(b2, vrow + 64);
            mma_m16n8k16<T>::run(acc[8], a, b2[0], b2[1]);
        }
        __syncthreads(); /* this buffer is refilled two tiles later */
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    const int g = lane >> 2, tq = lane & 3;
    T *o0 = o + ((size_t)n * Ttok + q0 + warp * 16 + g) * D + (size_t)h * FA_HD + tq * 2;
    T *o1 = o0 + 8 * (size_t)D;
#pragma unroll
    for (int t = 0; t < 9; t++) {
        *reinterpret_cast<uint32_t *>(o0 + t * 8) = pack2<T>(acc[t][0] * inv0, acc[t][1] * inv0);
        *reinterpret_cast<uint32_t *>(o1 + t * 8) = pack2<T>(acc[t][2] * inv1, acc[t][3] * inv1);
    }
}

/* ---- generic kernel ---- */

#define GA_WARPS 8
#define GA_QPW 2
#define GA_KT 32
#define GA_MAX_HD 512

/* Row pitch (elements) of the K/V tiles: even, with an odd number of 32-bit
 * words, so lane j's row starts in bank j (mod 32). */
static int ga_ldk(int hd) {
    int ldk = (hd + 1) & ~1;
    if ((ldk / 2) % 2 == 0) ldk += 2;
    return ldk;
}

template <typename T> static size_t ga_smem(int hd) {
    return 2 * (size_t)GA_KT * ga_ldk(hd) * sizeof(T) + (size_t)GA_WARPS * GA_QPW * hd * sizeof(float);
}

template <typename T, int EPL>
__global__ void __launch_bounds__(GA_WARPS * 32)
    attn_generic_kernel(T *__restrict__ o, const T *__restrict__ qkv, int Ttok, int H, int hd, int ldk, float scale) {
    FT_DYNAMIC_SHARED(unsigned char, ga_smem_raw, 16);
    T *sK = reinterpret_cast<T *>(ga_smem_raw);
    T *sV = sK + GA_KT * ldk;
    float *sQ = reinterpret_cast<float *>(sV + GA_KT * ldk); /* 2*KT*ldk*2 bytes: 4-byte aligned */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int h = blockIdx.y, n = blockIdx.z;
    const int D = H * hd;
    const size_t ld = 3 * (size_t)D;
    const T *base = qkv + (size_t)n * Ttok * ld + (size_t)h * hd;
    const int qfirst = (blockIdx.x * GA_WARPS + warp) * GA_QPW;
    float *myq = sQ + warp * GA_QPW * hd;
#pragma unroll
    for (int qi = 0; qi < GA_QPW; qi++) {
        int q = qfirst + qi;
        for (int e = lane; e < hd; e += 32) myq[qi * hd + e] = q < Ttok ? act_to_f<T>(base[(size_t)q * ld + e]) : 0.0f;
    }
    float m[GA_QPW], l[GA_QPW], acc[GA_QPW][EPL];
#pragma unroll
    for (int qi = 0; qi < GA_QPW; qi++) {
        m[qi] = -INFINITY;
        l[qi] = 0.0f;
#pragma unroll
        for (int i = 0; i < EPL; i++) acc[qi][i] = 0.0f;
    }
    for (int j0 = 0; j0 < Ttok; j0 += GA_KT) {
        const int nk = Ttok - j0 < GA_KT ? Ttok - j0 : GA_KT;
        __syncthreads(); /* the previous tile is consumed */
        for (int i = threadIdx.x; i < GA_KT * hd; i += GA_WARPS * 32) {
            int r = i / hd, e = i - r * hd;
            T kv = f_to_act<T>(0.0f), vv = kv;
            if (r < nk) {
                const T *row = base + (size_t)(j0 + r) * ld;
                kv = row[D + e];
                vv = row[2 * D + e];
            }
            sK[r * ldk + e] = kv;
            sV[r * ldk + e] = vv;
        }
        __syncthreads(); /* also publishes myq on the first tile */
        /* lane j scores key j0 + j */
        float sc[GA_QPW];
#pragma unroll
        for (int qi = 0; qi < GA_QPW; qi++) sc[qi] = 0.0f;
        const T *kr = sK + lane * ldk;
        for (int e = 0; e < hd; e++) {
            float kv = act_to_f<T>(kr[e]);
#pragma unroll
            for (int qi = 0; qi < GA_QPW; qi++) sc[qi] = fmaf(myq[qi * hd + e], kv, sc[qi]);
        }
        const bool valid = lane < nk;
        float p[GA_QPW];
#pragma unroll
        for (int qi = 0; qi < GA_QPW; qi++) {
            float s = valid ? sc[qi] * scale : -INFINITY;
            float mn = fmaxf(m[qi], warp_max(s)); /* finite: key j0 is valid */
            float corr = expf(m[qi] - mn);
            p[qi] = valid ? expf(s - mn) : 0.0f;
            l[qi] = l[qi] * corr + warp_sum(p[qi]);
            m[qi] = mn;
#pragma unroll
            for (int i = 0; i < EPL; i++) acc[qi][i] *= corr;
        }
        for (int jj = 0; jj < nk; jj++) {
            float pj[GA_QPW];
#pragma unroll
            for (int qi = 0; qi < GA_QPW; qi++) pj[qi] = __shfl_sync(0xffffffffu, p[qi], jj);
            const T *vr = sV + jj * ldk;
#pragma unroll
            for (int i = 0; i < EPL; i++) {
                int e = lane + 32 * i;
                if (e < hd) {
                    float v = act_to_f<T>(vr[e]);
#pragma unroll
                    for (int qi = 0; qi < GA_QPW; qi++) acc[qi][i] = fmaf(pj[qi], v, acc[qi][i]);
                }
            }
        }
    }
#pragma unroll
    for (int qi = 0; qi < GA_QPW; qi++) {
        int q = qfirst + qi;
        if (q >= Ttok) continue;
        float inv = 1.0f / l[qi];
        T *orow = o + ((size_t)n * Ttok + q) * D + (size_t)h * hd;
#pragma unroll
        for (int i = 0; i < EPL; i++) {
            int e = lane + 32 * i;
            if (e < hd) orow[e] = f_to_act<T>(acc[qi][i] * inv);
        }
    }
}

/* ---- launch ---- */

int attention_uses_mma(const void *o, const void *qkv, int T_, int hd) {
    return hd == FA_HD && T_ % FA_BK == 0 && ((uintptr_t)qkv & 15) == 0 && ((uintptr_t)o & 3) == 0;
}

template <typename T> static cudaError_t ga_init(size_t optin) {
    int lim = (int)(optin < ga_smem<T>(GA_MAX_HD) ? optin : ga_smem<T>(GA_MAX_HD));
    cudaError_t e = cudaSuccess;
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_generic_kernel<T, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, lim);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_generic_kernel<T, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, lim);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_generic_kernel<T, 4>, cudaFuncAttributeMaxDynamicSharedMemorySize, lim);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_generic_kernel<T, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, lim);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(attn_generic_kernel<T, 16>, cudaFuncAttributeMaxDynamicSharedMemorySize, lim);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(fa_hd72_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, FA_SMEM);
    return e;
}

cudaError_t attention_init(size_t smem_optin) {
    if (smem_optin < FA_SMEM) return cudaErrorInvalidValue;
    cudaError_t e = ga_init<__nv_bfloat16>(smem_optin);
    if (e == cudaSuccess) e = ga_init<__half>(smem_optin);
    return e;
}

template <typename T>
static cudaError_t attention_t(T *o, const T *qkv, int N, int T_, int H, int hd, size_t optin, cudaStream_t st) {
    if (attention_uses_mma(o, qkv, T_, hd)) {
        if (optin < FA_SMEM) return cudaErrorInvalidValue; /* attention_init was not run or the device is too small */
        const float sl2 = 1.4426950408889634f / sqrtf((float)FA_HD);
        dim3 grid((unsigned)(T_ / FA_BQ), (unsigned)H, (unsigned)N);
        FT_LAUNCH(grid, FA_THREADS, FA_SMEM, st, fa_hd72_kernel<T>)(o, qkv, T_, H, sl2);
        return cudaGetLastError();
    }
    if (hd > GA_MAX_HD) return cudaErrorInvalidValue;
    size_t smem = ga_smem<T>(hd);
    if (smem > optin) return cudaErrorInvalidValue;
    const int ldk = ga_ldk(hd);
    const float scale = 1.0f / sqrtf((float)hd);
    const int qpb = GA_WARPS * GA_QPW;
    dim3 grid((unsigned)((T_ + qpb - 1) / qpb), (unsigned)H, (unsigned)N);
    const int threads = GA_WARPS * 32;
    if (hd <= 32) FT_LAUNCH(grid, threads, smem, st, attn_generic_kernel<T, 1>)(o, qkv, T_, H, hd, ldk, scale);
    else if (hd <= 64) FT_LAUNCH(grid, threads, smem, st, attn_generic_kernel<T, 2>)(o, qkv, T_, H, hd, ldk, scale);
    else if (hd <= 128) FT_LAUNCH(grid, threads, smem, st, attn_generic_kernel<T, 4>)(o, qkv, T_, H, hd, ldk, scale);
    else if (hd <= 256) FT_LAUNCH(grid, threads, smem, st, attn_generic_kernel<T, 8>)(o, qkv, T_, H, hd, ldk, scale);
    else FT_LAUNCH(grid, threads, smem, st, attn_generic_kernel<T, 16>)(o, qkv, T_, H, hd, ldk, scale);
    return cudaGetLastError();
}

cudaError_t launch_attention(void *o, const void *qkv, int N, int T_, int H, int hd, ft_dtype act, size_t smem_optin,
                             cudaStream_t stream) {
    if (N <= 0 || T_ <= 0 || H <= 0 || hd <= 0) return cudaSuccess;
    if (H > 65535 || N > 65535) return cudaErrorInvalidValue;
    cudaError_t e;
    CU_ACT_DISPATCH(act, e = attention_t<T>((T *)o, (const T *)qkv, N, T_, H, hd, smem_optin, stream));
    return e;
}

/* Large head dims (the VAE's one 512-wide head over (latent side)^2 tokens)
 * on tensor cores: per (n, h), S = Q K^T (f32) and O = P V as cuBLASLt GEMMs
 * with a row softmax between them; S and P live in the backend's im2col
 * workspace, one (n, h) at a time. Returns 0 (nothing enqueued) when the
 * shape is not for it. */
static int attention_gemm(ft_backend *be, void *o, const void *qkv, int N, int T_, int H, int hd) {
    cu_impl *c = cu_of(be);
    const size_t s_bytes = ((size_t)T_ * T_ * 4 + 255) / 256 * 256, p_bytes = (size_t)T_ * T_ * 2;
    if (!c->attn_gemm || hd < 256 || s_bytes + p_bytes > c->col_elems * 2) return 0;
    float *S = (float *)c->col;
    void *P = (char *)c->col + s_bytes;
    const int D = H * hd;
    const size_t ld = 3 * (size_t)D;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int n = 0; n < N && !be->error[0]; n++)
        for (int h = 0; h < H && !be->error[0]; h++) {
            const char *q = (const char *)qkv + ((size_t)n * T_ * ld + (size_t)h * hd) * 2;
            const char *k = q + (size_t)D * 2, *v = q + 2 * (size_t)D * 2;
            char *on = (char *)o + ((size_t)n * T_ * D + (size_t)h * hd) * 2;
            /* column-major: S^T[j, i] = k_j . q_i, i.e. S row-major [query][key] */
            cu_matmul(be, 1, 0, T_, T_, hd, k, (int)ld, q, (int)ld, S, T_, 0, NULL, FT_EPI_NONE);
            if (be->error[0] || !CU_CHECK(be, launch_softmax_rows(P, S, T_, T_, scale, c->act, c->stream))) break;
            cu_matmul(be, 0, 0, hd, T_, T_, v, (int)ld, P, T_, on, D, 1, NULL, FT_EPI_NONE);
        }
    return 1;
}

void cu_attention(ft_backend *be, void *o, const void *qkv, int N, int T_, int H, int hd) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    if (!attention_uses_mma(o, qkv, T_, hd) && attention_gemm(be, o, qkv, N, T_, H, hd)) return;
    if (!attention_uses_mma(o, qkv, T_, hd)) {
        size_t need = c->act == FT_DTYPE_F16 ? ga_smem<__half>(hd) : ga_smem<__nv_bfloat16>(hd);
        if (hd > GA_MAX_HD || need > c->smem_optin) {
            ft_backend_fail(be,
                            "attention: head dim %d is not supported by the CUDA kernels (at most %d, and %zu bytes "
                            "of shared memory against the device's %zu)",
                            hd, GA_MAX_HD, need, c->smem_optin);
            return;
        }
    }
    CU_CHECK(be, launch_attention(o, qkv, N, T_, H, hd, c->act, c->smem_optin, c->stream));
}
