/* kernels/cuda/norm.cu — LayerNorm + adaLN modulate, gated residual + next
 * LayerNorm, GroupNorm (+SiLU) on f32 NCHW or act NHWC maps, row softmax.
 *
 * Reference: kernels/cpu/norm.c. Per token row (n, t) of D floats:
 *   mean = sum(x) / D, var = sum((x - mean)^2) / D (biased), rstd = 1/sqrt(var + eps)
 *   h = ((x - mean) * rstd) * (1 + scale[n, :]) + shift[n, :]      (act)
 * The CPU accumulates in double; here the row lives in registers, both
 * passes are fp32 with a fixed-order block reduction (deterministic), which
 * agrees to ~1e-7 relative. The residual update x += gate * a uses explicit
 * round-to-nearest multiply and add (no FMA contraction), as the CPU does.
 *
 * One block of 128 threads per row. The fast kernels keep VPT float4s per
 * thread in registers (D % 4 == 0, D <= 4096, 16-byte aligned rows); the
 * generic kernels take any D and re-read x from global memory.
 *
 * GroupNorm: a group of (C / G) * HW elements (up to ~0.5 M) is split over
 * up to 64 blocks; each block writes (count, mean, M2) of its chunk to the
 * backend's small scratch; the apply kernel combines them in a fixed order in
 * double (Chan et al.) — deterministic — and writes y (optionally SiLU). The
 * same two kernels serve the f32 NCHW maps of the generic VAE path and the
 * act NHWC feature maps of the cuDNN one (fp32 statistics either way; the
 * feature maps are read twice and written once, in act). */
#include <math.h>

#include "norm.cuh"

#define LN_THREADS 128

/* Sum (or, with MAX, maximum) over the block (blockDim.x a multiple of 32);
 * every thread gets it. sh: 32 floats of shared memory. */
template <bool MAX> __device__ __forceinline__ float block_reduce(float v, float *sh) {
    v = MAX ? warp_max(v) : warp_sum(v);
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (l == 0) sh[w] = v;
    __syncthreads();
    float t = l < nw ? sh[l] : (MAX ? -INFINITY : 0.0f);
    return MAX ? warp_max(t) : warp_sum(t);
}
__device__ __forceinline__ float block_sum(float v, float *sh) { return block_reduce<false>(v, sh); }
__device__ __forceinline__ float block_max(float v, float *sh) { return block_reduce<true>(v, sh); }

/* ---- fast path: row in registers ---- */

template <typename T, int VPT>
__device__ __forceinline__ void ln_mod_store_vec(const float4 (&v)[VPT], int D, T *hrow, const float *shift,
                                                 const float *scale, float eps, float *sh) {
    const int D4 = D >> 2;
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        int idx = threadIdx.x + k * LN_THREADS;
        if (idx < D4) s += (v[k].x + v[k].y) + (v[k].z + v[k].w);
    }
    const float mean = block_sum(s, sh) / (float)D;
    float q = 0.0f;
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        int idx = threadIdx.x + k * LN_THREADS;
        if (idx < D4) {
            float a = v[k].x - mean, b = v[k].y - mean, c = v[k].z - mean, d = v[k].w - mean;
            q += (a * a + b * b) + (c * c + d * d);
        }
    }
    const float var = block_sum(q, sh) / (float)D;
    const float rstd = 1.0f / sqrtf(var + eps);
    const float4 *sc4 = reinterpret_cast<const float4 *>(scale);
    const float4 *sh4 = reinterpret_cast<const float4 *>(shift);
    uint2 *h2 = reinterpret_cast<uint2 *>(hrow);
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        int idx = threadIdx.x + k * LN_THREADS;
        if (idx < D4) {
            float4 a = sc4[idx], b = sh4[idx];
            float o[4];
            o[0] = ((v[k].x - mean) * rstd) * (1.0f + a.x) + b.x;
            o[1] = ((v[k].y - mean) * rstd) * (1.0f + a.y) + b.y;
            o[2] = ((v[k].z - mean) * rstd) * (1.0f + a.z) + b.z;
            o[3] = ((v[k].w - mean) * rstd) * (1.0f + a.w) + b.w;
            h2[idx] = pack4<T>(o);
        }
    }
}

template <typename T, int VPT>
__global__ void __launch_bounds__(LN_THREADS)
    ln_mod_vec_kernel(T *h, const float *x, const float *shift, const float *scale, int mod_stride, int Ttok, int D,
                      float eps) {
    FT_SHARED(float, sh, [32]);
    const size_t row = blockIdx.x;
    const int n = (int)(row / (size_t)Ttok);
    const float4 *x4 = reinterpret_cast<const float4 *>(x + row * D);
    float4 v[VPT];
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        int idx = threadIdx.x + k * LN_THREADS;
        v[k] = idx < (D >> 2) ? x4[idx] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    ln_mod_store_vec<T, VPT>(v, D, h + row * D, shift + (size_t)n * mod_stride, scale + (size_t)n * mod_stride, eps,
                             sh);
}

template <typename T, int VPT>
__global__ void __launch_bounds__(LN_THREADS)
    gated_vec_kernel(float *x, const T *a, const float *gate, T *h, const float *next_shift, const float *next_scale,
                     int mod_stride, int Ttok, int D, float eps) {
    FT_SHARED(float, sh, [32]);
    const size_t row = blockIdx.x;
    const int n = (int)(row / (size_t)Ttok);
    float4 *x4 = reinterpret_cast<float4 *>(x + row * D);
    const uint2 *a4 = reinterpret_cast<const uint2 *>(a + row * D);
    const float4 *g4 = reinterpret_cast<const float4 *>(gate + (size_t)n * mod_stride);
    float4 v[VPT];
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        int idx = threadIdx.x + k * LN_THREADS;
        if (idx < (D >> 2)) {
            float4 xv = x4[idx], g = g4[idx];
            float av[4];
            unpack4<T>(a4[idx], av);
            /* x + g * a, rounded like the CPU's separate multiply and add */
            xv.x = __fadd_rn(xv.x, __fmul_rn(g.x, av[0]));
            xv.y = __fadd_rn(xv.y, __fmul_rn(g.y, av[1]));
            xv.z = __fadd_rn(xv.z, __fmul_rn(g.z, av[2]));
            xv.w = __fadd_rn(xv.w, __fmul_rn(g.w, av[3]));
            x4[idx] = xv;
            v[k] = xv;
        } else {
            v[k] = make_float4(0.f, 0.f, 0.f, 0.f);
        }
    }
    if (h)
        ln_mod_store_vec<T, VPT>(v, D, h + row * D, next_shift + (size_t)n * mod_stride,
                                 next_scale + (size_t)n * mod_stride, eps, sh);
}

/* ---- generic path: any D, x re-read from memory ---- */

template <typename T>
__device__ __forceinline__ void ln_mod_store_gen(const float *xr, int D, T *hrow, const float *shift,
                                                 const float *scale, float eps, float *sh) {
    float s = 0.0f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) s += xr[d];
    const float mean = block_sum(s, sh) / (float)D;
    float q = 0.0f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float c = xr[d] - mean;
        q += c * c;
    }
    const float var = block_sum(q, sh) / (float)D;
    const float rstd = 1.0f / sqrtf(var + eps);
    for (int d = threadIdx.x; d < D; d += blockDim.x)
        hrow[d] = f_to_act<T>(((xr[d] - mean) * rstd) * (1.0f + scale[d]) + shift[d]);
}

template <typename T>
__global__ void __launch_bounds__(LN_THREADS)
    ln_mod_gen_kernel(T *h, const float *x, const float *shift, const float *scale, int mod_stride, int Ttok, int D,
                      float eps) {
    FT_SHARED(float, sh, [32]);
    const size_t row = blockIdx.x;
    const int n = (int)(row / (size_t)Ttok);
    ln_mod_store_gen<T>(x + row * D, D, h + row * D, shift + (size_t)n * mod_stride, scale + (size_t)n * mod_stride,
                        eps, sh);
}

template <typename T>
__global__ void __launch_bounds__(LN_THREADS)
    gated_gen_kernel(float *x, const T *a, const float *gate, T *h, const float *next_shift, const float *next_scale,
                     int mod_stride, int Ttok, int D, float eps) {
    FT_SHARED(float, sh, [32]);
    const size_t row = blockIdx.x;
    const int n = (int)(row / (size_t)Ttok);
    float *xr = x + row * D;
    const T *ar = a + row * D;
    const float *g = gate + (size_t)n * mod_stride;
    /* each thread later re-reads only the elements it wrote itself */
    for (int d = threadIdx.x; d < D; d += blockDim.x) xr[d] = __fadd_rn(xr[d], __fmul_rn(g[d], act_to_f<T>(ar[d])));
    if (h)
        ln_mod_store_gen<T>(xr, D, h + row * D, next_shift + (size_t)n * mod_stride,
                            next_scale + (size_t)n * mod_stride, eps, sh);
}

/* VPT float4s per thread for the fast path, or 0 for the generic kernels. */
static int ln_vpt(int D, uintptr_t align_bits, int mod_stride) {
    if (D % 4 || mod_stride % 4 || (align_bits & 15)) return 0;
    int vpt = (D / 4 + LN_THREADS - 1) / LN_THREADS;
    if (vpt == 1 || vpt == 2 || vpt == 3 || vpt == 4) return vpt;
    if (vpt <= 6) return 6;
    if (vpt <= 8) return 8;
    return 0;
}

template <typename T>
static void ln_launch(int vpt, unsigned grid, T *h, const float *x, const float *shift, const float *scale,
                      int mod_stride, int T_, int D, float eps, cudaStream_t st) {
    switch (vpt) {
    case 0: FT_LAUNCH(grid, LN_THREADS, 0, st, ln_mod_gen_kernel<T>)(h, x, shift, scale, mod_stride, T_, D, eps); break;
    case 1: FT_LAUNCH(grid, LN_THREADS, 0, st, ln_mod_vec_kernel<T, 1>)(h, x, shift, scale, mod_stride, T_, D, eps); break;
    case 2: FT_LAUNCH(grid, LN_THREADS, 0, st, ln_mod_vec_kernel<T, 2>)(h, x, shift, scale, mod_stride, T_, D, eps); break;
    case 3: FT_LAUNCH(grid, LN_THREADS, 0, st, ln_mod_vec_kernel<T, 3>)(h, x, shift, scale, mod_stride, T_, D, eps); break;
    case 4: FT_LAUNCH(grid, LN_THREADS, 0, st, ln_mod_vec_kernel<T, 4>)(h, x, shift, scale, mod_stride, T_, D, eps); break;
    case 6: FT_LAUNCH(grid, LN_THREADS, 0, st, ln_mod_vec_kernel<T, 6>)(h, x, shift, scale, mod_stride, T_, D, eps); break;
    default: FT_LAUNCH(grid, LN_THREADS, 0, st, ln_mod_vec_kernel<T, 8>)(h, x, shift, scale, mod_stride, T_, D, eps); break;
    }
}

template <typename T>
static void gated_launch(int vpt, unsigned grid, float *x, const T *a, const float *gate, T *h, const float *nsh,
                         const float *nsc, int mod_stride, int T_, int D, float eps, cudaStream_t st) {
#define GATED_ARGS x, a, gate, h, nsh, nsc, mod_stride, T_, D, eps
    switch (vpt) {
    case 0: FT_LAUNCH(grid, LN_THREADS, 0, st, gated_gen_kernel<T>)(GATED_ARGS); break;
    case 1: FT_LAUNCH(grid, LN_THREADS, 0, st, gated_vec_kernel<T, 1>)(GATED_ARGS); break;
    case 2: FT_LAUNCH(grid, LN_THREADS, 0, st, gated_vec_kernel<T, 2>)(GATED_ARGS); break;
    case 3: FT_LAUNCH(grid, LN_THREADS, 0, st, gated_vec_kernel<T, 3>)(GATED_ARGS); break;
    case 4: FT_LAUNCH(grid, LN_THREADS, 0, st, gated_vec_kernel<T, 4>)(GATED_ARGS); break;
    case 6: FT_LAUNCH(grid, LN_THREADS, 0, st, gated_vec_kernel<T, 6>)(GATED_ARGS); break;
    default: FT_LAUNCH(grid, LN_THREADS, 0, st, gated_vec_kernel<T, 8>)(GATED_ARGS); break;
    }
#undef GATED_ARGS
}

cudaError_t launch_layernorm_modulate(void *h, const float *x, const float *shift, const float *scale,
                                      int mod_stride, int N, int T_, int D, float eps, ft_dtype act,
                                      cudaStream_t stream) {
    size_t rows = (size_t)N * T_;
    if (!rows || D <= 0) return cudaSuccess;
    if (rows > 0x7fffffffu) return cudaErrorInvalidValue;
    uintptr_t bits = (uintptr_t)x | (uintptr_t)shift | (uintptr_t)scale | ((uintptr_t)h & 7);
    int vpt = ln_vpt(D, bits, mod_stride);
    CU_ACT_DISPATCH(act, ln_launch<T>(vpt, (unsigned)rows, (T *)h, x, shift, scale, mod_stride, T_, D, eps, stream));
    return cudaGetLastError();
}

cudaError_t launch_gated_residual(float *x, const void *a, const float *gate, void *h, const float *next_shift,
                                  const float *next_scale, int mod_stride, int N, int T_, int D, float eps,
                                  ft_dtype act, cudaStream_t stream) {
    size_t rows = (size_t)N * T_;
    if (!rows || D <= 0) return cudaSuccess;
    if (rows > 0x7fffffffu) return cudaErrorInvalidValue;
    uintptr_t bits = (uintptr_t)x | (uintptr_t)gate | ((uintptr_t)a & 7);
    if (h) bits |= (uintptr_t)next_shift | (uintptr_t)next_scale | ((uintptr_t)h & 7);
    int vpt = ln_vpt(D, bits, mod_stride);
    CU_ACT_DISPATCH(act, gated_launch<T>(vpt, (unsigned)rows, x, (const T *)a, gate, (T *)h, next_shift, next_scale,
                                         mod_stride, T_, D, eps, stream));
    return cudaGetLastError();
}

/* ---- GroupNorm ---- */

#define GN_THREADS 256
#define GN_MAX_SPLIT 64
#define GN_CHUNK 8192 /* elements per block, roughly */

/* Element i (of cg * HW) of group g of image n: its offset and channel.
 * NCHW (f32 VAE path): a group is one contiguous run of cg planes.
 * NHWC (feature maps, act): cg consecutive channels at each pixel. */
template <bool NHWC> struct gn_layout {
    static __device__ __forceinline__ size_t offset(size_t n, int g, size_t i, int C, int cg, int HW) {
        return NHWC ? ((n * (size_t)HW + i / (size_t)cg) * (size_t)C + (size_t)g * cg + i % (size_t)cg)
                    : (n * (size_t)C + (size_t)g * cg) * (size_t)HW + i;
    }
    static __device__ __forceinline__ int channel(int g, size_t i, int cg, int HW) {
        return g * cg + (int)(NHWC ? i % (size_t)cg : i / (size_t)HW);
    }
};

/* Block (s, ng): mean and M2 of chunk s of group ng, two passes (the second
 * mostly from L1/L2). partials[(ng * S + s) * 3 + {0,1,2}] = count, mean, M2. */
template <typename TI, bool NHWC>
__global__ void __launch_bounds__(GN_THREADS)
    gn_stats_kernel(const TI *x, float *partials, size_t count, int S, size_t chunk, int C, int cg, int HW,
                    int groups) {
    FT_SHARED(float, sh, [32]);
    const int s = blockIdx.x;
    const size_t ng = blockIdx.y, n = ng / (size_t)groups;
    const int g = (int)(ng % (size_t)groups);
    size_t lo = (size_t)s * chunk, hi = lo + chunk < count ? lo + chunk : count;
    if (lo > hi) lo = hi;
    float sum = 0.0f;
    for (size_t i = lo + threadIdx.x; i < hi; i += GN_THREADS)
        sum += act_to_f<TI>(x[gn_layout<NHWC>::offset(n, g, i, C, cg, HW)]);
    const float cnt = (float)(hi - lo);
    const float total = block_sum(sum, sh);
    const float mean = hi > lo ? total / cnt : 0.0f;
    float m2 = 0.0f;
    for (size_t i = lo + threadIdx.x; i < hi; i += GN_THREADS) {
        float c = act_to_f<TI>(x[gn_layout<NHWC>::offset(n, g, i, C, cg, HW)]) - mean;
        m2 += c * c;
    }
    m2 = block_sum(m2, sh);
    if (threadIdx.x == 0) {
        float *p = partials + (ng * S + s) * 3;
        p[0] = cnt;
        p[1] = mean;
        p[2] = m2;
    }
}

template <typename TI, typename TO, bool NHWC>
__global__ void __launch_bounds__(GN_THREADS)
    gn_apply_kernel(TO *y, const TI *x, const float *gamma, const float *beta, const float *partials, size_t count,
                    int S, size_t chunk, int C, int cg, int HW, int groups, float eps, int silu) {
    FT_SHARED(float, stats, [2]);
    const int s = blockIdx.x;
    const size_t ng = blockIdx.y, n = ng / (size_t)groups;
    const int g = (int)(ng % (size_t)groups);
    if (threadIdx.x == 0) {
        /* Chan's pairwise combination, chunks in order, in double */
        const float *p = partials + ng * S * 3;
        double nn = 0.0, mean = 0.0, m2 = 0.0;
        for (int i = 0; i < S; i++) {
            double nb = p[3 * i], mb = p[3 * i + 1], m2b = p[3 * i + 2];
            if (nb <= 0.0) continue;
            double tot = nn + nb, delta = mb - mean;
            mean += delta * nb / tot;
            m2 += m2b + delta * delta * nn * nb / tot;
            nn = tot;
        }
        double var = nn > 0.0 ? m2 / nn : 0.0;
        stats[0] = (float)mean;
        stats[1] = (float)(1.0 / sqrt(var + (double)eps));
    }
    __syncthreads();
    const float mu = stats[0], rstd = stats[1];
    size_t lo = (size_t)s * chunk, hi = lo + chunk < count ? lo + chunk : count;
    for (size_t i = lo + threadIdx.x; i < hi; i += GN_THREADS) {
        size_t o = gn_layout<NHWC>::offset(n, g, i, C, cg, HW);
        int ch = gn_layout<NHWC>::channel(g, i, cg, HW);
        float v = (act_to_f<TI>(x[o]) - mu) * rstd * gamma[ch] + beta[ch];
        y[o] = f_to_act<TO>(silu ? v / (1.0f + expf(-v)) : v);
    }
}

/* Splits each group's elements over up to GN_MAX_SPLIT blocks (the partials
 * scratch bounds how many); the stats and apply launches share the split. */
template <typename TI, typename TO, bool NHWC>
static cudaError_t gn_launch(TO *y, const TI *x, const float *gamma, const float *beta, int N, int C, int HW,
                             int groups, float eps, int silu, float *partials, size_t partial_floats,
                             cudaStream_t stream) {
    if (N <= 0 || C <= 0 || HW <= 0) return cudaSuccess;
    if (groups <= 0 || C % groups) return cudaErrorInvalidValue;
    const int cg = C / groups;
    const size_t count = (size_t)cg * HW, n_groups = (size_t)N * groups;
    if (n_groups > 65535u) return cudaErrorInvalidValue;
    size_t S = (count + GN_CHUNK - 1) / GN_CHUNK;
    if (S > GN_MAX_SPLIT) S = GN_MAX_SPLIT;
    if (S * n_groups * 3 > partial_floats) S = partial_floats / (n_groups * 3);
    if (S < 1) return cudaErrorMemoryAllocation; /* scratch too small for this many groups */
    size_t chunk = (count + S - 1) / S;
    dim3 grid((unsigned)S, (unsigned)n_groups);
    FT_LAUNCH(grid, GN_THREADS, 0, stream, gn_stats_kernel<TI, NHWC>)(x, partials, count, (int)S, chunk, C, cg, HW,
                                                                      groups);
    FT_LAUNCH(grid, GN_THREADS, 0, stream, gn_apply_kernel<TI, TO, NHWC>)(y, x, gamma, beta, partials, count, (int)S,
                                                                          chunk, C, cg, HW, groups, eps, silu);
    return cudaGetLastError();
}

cudaError_t launch_group_norm(float *y, const float *x, const float *gamma, const float *beta, int N, int C, int HW,
                              int groups, float eps, int silu, float *partials, size_t partial_floats,
                              cudaStream_t stream) {
    return gn_launch<float, float, false>(y, x, gamma, beta, N, C, HW, groups, eps, silu, partials, partial_floats,
                                          stream);
}

cudaError_t launch_group_norm_fm(void *y, const void *x, const float *gamma, const float *beta, int N, int C, int HW,
                                 int groups, float eps, int silu, float *partials, size_t partial_floats, ft_dtype act,
                                 cudaStream_t stream) {
    cudaError_t e;
    CU_ACT_DISPATCH(act, e = (gn_launch<T, T, true>((T *)y, (const T *)x, gamma, beta, N, C, HW, groups, eps, silu,
                                                     partials, partial_floats, stream)));
    return e;
}

/* ---- softmax over rows (attention probabilities) ----
 * p[r, j] (act) = exp(s[r, j] * scale - max) / sum, f32 statistics; one block
 * of 256 threads per row, the row re-read from L1/L2 for each pass. */
#define SM_THREADS 256

template <typename T>
__global__ void __launch_bounds__(SM_THREADS) softmax_rows_kernel(T *p, const float *s, int cols, float scale) {
    FT_SHARED(float, sh, [32]);
    const float *row = s + (size_t)blockIdx.x * cols;
    T *out = p + (size_t)blockIdx.x * cols;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < cols; j += SM_THREADS) mx = fmaxf(mx, row[j] * scale);
    mx = block_max(mx, sh);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < cols; j += SM_THREADS) sum += expf(row[j] * scale - mx);
    const float inv = 1.0f / block_sum(sum, sh);
    for (int j = threadIdx.x; j < cols; j += SM_THREADS) out[j] = f_to_act<T>(expf(row[j] * scale - mx) * inv);
}

cudaError_t launch_softmax_rows(void *p, const float *s, int rows, int cols, float scale, ft_dtype act,
                                cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    if ((unsigned)rows > 0x7fffffffu) return cudaErrorInvalidValue;
    CU_ACT_DISPATCH(act, FT_LAUNCH((unsigned)rows, SM_THREADS, 0, stream, softmax_rows_kernel<T>)((T *)p, s, cols,
                                                                                                  scale));
    return cudaGetLastError();
}

/* ---- backend ops ---- */

void cu_layernorm_modulate(ft_backend *be, void *h, const float *x, const float *shift, const float *scale,
                           int mod_stride, int N, int T_, int D, float eps) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_layernorm_modulate(h, x, shift, scale, mod_stride, N, T_, D, eps, c->act, c->stream));
}

void cu_gated_residual(ft_backend *be, float *x, const void *a, const float *gate, void *h, const float *next_shift,
                       const float *next_scale, int mod_stride, int N, int T_, int D, float eps) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_gated_residual(x, a, gate, h, next_shift, next_scale, mod_stride, N, T_, D, eps, c->act,
                                       c->stream));
}

void cu_group_norm(ft_backend *be, float *y, const float *x, const float *gamma, const float *beta, int N, int C,
                   int HW, int groups, float eps, int silu) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_group_norm(y, x, gamma, beta, N, C, HW, groups, eps, silu, c->small, c->small_floats,
                                   c->stream));
}

void cu_fm_group_norm(ft_backend *be, void *y, const void *x, const float *gamma, const float *beta, int N, int C,
                      int HW, int groups, float eps, int silu) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_group_norm_fm(y, x, gamma, beta, N, C, HW, groups, eps, silu, c->small, c->small_floats,
                                      c->act, c->stream));
}
