/* kernels/cuda/elementwise.cu — f32 element-wise ops.
 *
 * Reference: kernels/cpu/elementwise.c. Every multiply and add here is an
 * explicit round-to-nearest intrinsic (__fmul_rn, __fadd_rn, __fsub_rn), which
 * nvcc never contracts into an FMA: given the same inputs the results are
 * bit-identical to the CPU backend's (which compiles without contraction).
 * Only SiLU differs, by expf's last-ulp rounding.
 *
 * velocity_tail is the optional fused op of backend.h: guidance combine (+ a
 * base velocity) and the Euler/Heun update of one network call in one pass,
 * each thread owning one conditional element and its unconditional twin. */
#include "elementwise.cuh"

#define EW_THREADS 256

static unsigned ew_blocks(size_t n) {
    unsigned b = cu_blocks(n, EW_THREADS);
    return b > 65536u ? 65536u : b;
}

__global__ void silu_kernel(float *y, const float *x, size_t n) {
    CU_FOR(i, n) {
        float v = x[i];
        y[i] = v / (1.0f + expf(-v));
    }
}
__global__ void add_kernel(float *y, const float *a, const float *b, size_t n) {
    CU_FOR(i, n) y[i] = __fadd_rn(a[i], b[i]);
}
__global__ void scale_kernel(float *y, const float *x, float s, size_t n) {
    CU_FOR(i, n) y[i] = __fmul_rn(x[i], s);
}
__global__ void euler_kernel(float *out, const float *x, const float *d, float h, size_t n) {
    CU_FOR(i, n) out[i] = __fadd_rn(x[i], __fmul_rn(h, d[i]));
}
__global__ void heun_kernel(float *out, const float *x, const float *d, const float *e, float half_h, size_t n) {
    CU_FOR(i, n) out[i] = __fadd_rn(x[i], __fmul_rn(half_h, __fadd_rn(d[i], e[i])));
}

cudaError_t launch_silu(float *y, const float *x, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    FT_LAUNCH(ew_blocks(n), EW_THREADS, 0, st, silu_kernel)(y, x, n);
    return cudaGetLastError();
}
cudaError_t launch_add(float *y, const float *a, const float *b, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    FT_LAUNCH(ew_blocks(n), EW_THREADS, 0, st, add_kernel)(y, a, b, n);
    return cudaGetLastError();
}
cudaError_t launch_scale(float *y, const float *x, float s, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    FT_LAUNCH(ew_blocks(n), EW_THREADS, 0, st, scale_kernel)(y, x, s, n);
    return cudaGetLastError();
}
cudaError_t launch_euler_update(float *out, const float *x, const float *d, float h, size_t n, cudaStream_t st) {
    if (!n) return cudaSuccess;
    FT_LAUNCH(ew_blocks(n), EW_THREADS, 0, st, euler_kernel)(out, x, d, h, n);
    return cudaGetLastError();
}
cudaError_t launch_heun_update(float *out, const float *x, const float *d, const float *e, float h, size_t n,
                               cudaStream_t st) {
    if (!n) return cudaSuccess;
    FT_LAUNCH(ew_blocks(n), EW_THREADS, 0, st, heun_kernel)(out, x, d, e, 0.5f * h, n);
    return cudaGetLastError();
}

/* y[b, r, c] = x[b, c, r] through a padded 32 x 32 shared tile. */
__global__ void transpose_kernel(float *y, const float *x, int C, int R) {
    FT_SHARED(float, tile, [32][33]);
    const size_t b = blockIdx.z;
    const int r0 = blockIdx.x * 32, c0 = blockIdx.y * 32;
    const float *xb = x + b * (size_t)C * R;
    float *yb = y + b * (size_t)C * R;
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        int c = c0 + k, r = r0 + threadIdx.x;
        if (c < C && r < R) tile[k][threadIdx.x] = xb[(size_t)c * R + r];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        int r = r0 + k, c = c0 + threadIdx.x;
        if (r < R && c < C) yb[(size_t)r * C + c] = tile[threadIdx.x][k];
    }
}

cudaError_t launch_transpose(float *y, const float *x, int batch, int C, int R, cudaStream_t st) {
    if (batch <= 0 || C <= 0 || R <= 0) return cudaSuccess;
    if (batch > 65535 || (C + 31) / 32 > 65535) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((R + 31) / 32), (unsigned)((C + 31) / 32), (unsigned)batch);
    FT_LAUNCH(grid, dim3(32, 8), 0, st, transpose_kernel)(y, x, C, R);
    return cudaGetLastError();
}

__global__ void cfg_kernel(float *v, const float *raw, int C, int HW, size_t half, const float *scale, int guided) {
    const float s = *scale;
    CU_FOR(i, half) {
        int c = (int)((i / (size_t)HW) % (size_t)C);
        float cond = raw[i], unc = raw[half + i];
        if (c < guided) {
            float g = __fadd_rn(unc, __fmul_rn(s, __fsub_rn(cond, unc)));
            v[i] = g;
            v[half + i] = g;
        } else {
            v[i] = cond;
            v[half + i] = unc;
        }
    }
}

cudaError_t launch_cfg_combine(float *v, const float *raw, int B, int C, int HW, const float *scale, int guided,
                               cudaStream_t st) {
    size_t half = (size_t)B * C * HW;
    if (!half) return cudaSuccess;
    FT_LAUNCH(ew_blocks(half), EW_THREADS, 0, st, cfg_kernel)(v, raw, C, HW, half, scale, guided);
    return cudaGetLastError();
}

__global__ void velocity_tail_kernel(float *v, const float *raw, const float *base, int guided, int C, int HW,
                                     size_t n, const float *scale, int guided_channels, float *x_out,
                                     const float *x_in, const float *d, float h) {
    const float s = guided ? *scale : 0.0f;
    const float half_h = 0.5f * h;
    CU_FOR(i, n) {
        float vc = raw[i];
        if (guided) {
            float vu = raw[n + i];
            int c = (int)((i / (size_t)HW) % (size_t)C);
            if (c < guided_channels) {
                float g = __fadd_rn(vu, __fmul_rn(s, __fsub_rn(vc, vu)));
                vc = g;
                vu = g;
            }
            if (base) vu = __fadd_rn(base[n + i], vu);
            v[n + i] = vu;
        }
        if (base) vc = __fadd_rn(base[i], vc);
        v[i] = vc;
        if (x_out) {
            float xv = x_in[i];
            x_out[i] = d ? __fadd_rn(xv, __fmul_rn(half_h, __fadd_rn(d[i], vc))) : __fadd_rn(xv, __fmul_rn(h, vc));
        }
    }
}

cudaError_t launch_velocity_tail(float *v, const float *raw, const float *base, int B, int guided, int C, int HW,
                                 const float *scale, int guided_channels, float *x_out, const float *x_in,
                                 const float *d, float h, cudaStream_t st) {
    size_t n = (size_t)B * C * HW;
    if (!n) return cudaSuccess;
    FT_LAUNCH(ew_blocks(n), EW_THREADS, 0, st, velocity_tail_kernel)(v, raw, base, guided, C, HW, n, scale, guided_channels,
                                                              x_out, x_in, d, h);
    return cudaGetLastError();
}

__global__ void rgb8_kernel(uint8_t *rgb, const float *img, int C, size_t plane, size_t total) {
    CU_FOR(i, total) {
        int c = (int)(i % 3);
        size_t rest = i / 3, p = rest % plane, n = rest / plane;
        float v = __fadd_rn(__fmul_rn(127.5f, img[(n * C + (C == 1 ? 0 : c)) * plane + p]), 128.0f);
        /* clamp then truncate toward zero, as torch's .to(uint8); NaN maps to 0 */
        v = v > 255.0f ? 255.0f : (v >= 0.0f ? v : 0.0f);
        rgb[i] = (uint8_t)v;
    }
}

cudaError_t launch_to_rgb8(uint8_t *rgb, const float *img, int N, int C, int S, cudaStream_t st) {
    size_t plane = (size_t)S * S, total = (size_t)N * plane * 3;
    if (!total) return cudaSuccess;
    FT_LAUNCH(ew_blocks(total), EW_THREADS, 0, st, rgb8_kernel)(rgb, img, C, plane, total);
    return cudaGetLastError();
}

/* Block row (n, co) of the output: the bias is read once per block. */
__global__ void channel_bias_rows_kernel(float *y, const float *bias, int Cout, size_t P) {
    const float b = bias[blockIdx.y % (unsigned)Cout];
    float *row = y + (size_t)blockIdx.y * P;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < P; i += (size_t)gridDim.x * blockDim.x)
        row[i] = __fadd_rn(row[i], b);
}

__global__ void channel_bias_kernel(float *y, const float *bias, int Cout, size_t P, size_t total) {
    CU_FOR(i, total) y[i] = __fadd_rn(y[i], bias[(i / P) % (size_t)Cout]);
}

cudaError_t launch_channel_bias(float *y, const float *bias, int N, int Cout, size_t P, cudaStream_t st) {
    size_t total = (size_t)N * Cout * P, rows = (size_t)N * Cout;
    if (!total || !bias) return cudaSuccess;
    if (rows <= 65535) {
        size_t bx = (P + EW_THREADS - 1) / EW_THREADS;
        dim3 grid((unsigned)(bx < 1024 ? bx : 1024), (unsigned)rows);
        FT_LAUNCH(grid, EW_THREADS, 0, st, channel_bias_rows_kernel)(y, bias, Cout, P);
    } else {
        FT_LAUNCH(ew_blocks(total), EW_THREADS, 0, st, channel_bias_kernel)(y, bias, Cout, P, total);
    }
    return cudaGetLastError();
}

cudaError_t kernels_probe(void) {
    cudaFuncAttributes a;
    return cudaFuncGetAttributes(&a, add_kernel);
}

/* ---- backend ops ---- */

#define EW_OP(call)                            \
    do {                                       \
        if (!cu_enter(be)) return;             \
        CU_CHECK(be, call);                    \
    } while (0)
#define ST (cu_of(be)->stream)

void cu_silu(ft_backend *be, float *y, const float *x, size_t n) { EW_OP(launch_silu(y, x, n, ST)); }
void cu_add(ft_backend *be, float *y, const float *a, const float *b, size_t n) { EW_OP(launch_add(y, a, b, n, ST)); }
void cu_scale(ft_backend *be, float *y, const float *x, float s, size_t n) { EW_OP(launch_scale(y, x, s, n, ST)); }
void cu_transpose(ft_backend *be, float *y, const float *x, int batch, int C, int R) {
    EW_OP(launch_transpose(y, x, batch, C, R, ST));
}
void cu_cfg_combine(ft_backend *be, float *v, const float *raw, int B, int C, int HW, const float *scale, int guided) {
    EW_OP(launch_cfg_combine(v, raw, B, C, HW, scale, guided, ST));
}
void cu_euler_update(ft_backend *be, float *out, const float *x, const float *d, float h, size_t n) {
    EW_OP(launch_euler_update(out, x, d, h, n, ST));
}
void cu_heun_update(ft_backend *be, float *out, const float *x, const float *d, const float *e, float h, size_t n) {
    EW_OP(launch_heun_update(out, x, d, e, h, n, ST));
}
void cu_velocity_tail(ft_backend *be, float *v, const float *raw, const float *base, int B, int guided, int C, int HW,
                      const float *scale, int guided_channels, float *x_out, const float *x_in, const float *d,
                      float h) {
    EW_OP(launch_velocity_tail(v, raw, base, B, guided, C, HW, scale, guided_channels, x_out, x_in, d, h, ST));
}
void cu_to_rgb8(ft_backend *be, uint8_t *rgb, const float *img, int N, int C, int S) {
    EW_OP(launch_to_rgb8(rgb, img, N, C, S, ST));
}
