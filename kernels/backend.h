/*
 * kernels/backend.h — the op set every compute backend implements.
 *
 * The engine (model forward passes, samplers, VAE) is written only against
 * this table; it never calls BLAS, OpenMP or CUDA itself. Each op family has
 * a CPU reference in kernels/cpu/<family>.c and a CUDA version in
 * kernels/cuda/<family>.cu.
 *
 * Buffers are backend ("device") pointers. Element types:
 *   f32    float32 on every backend: residual stream, ODE state, velocities,
 *          conditioning vectors, modulation, VAE feature maps.
 *   act    the backend's activation type for GEMM operands (CPU: float32,
 *          CUDA: bf16 or fp16); its size is be->act_size.
 *   weight matrices as the backend stores them (CPU float32, CUDA bf16/fp16);
 *          vectors (biases, norms, embeddings, pos_embed) are always f32.
 * Matrices follow PyTorch: a Linear weight is [N_out, K], y = x W^T + b; a
 * conv weight is [C_out, C_in, k, k].
 *
 * Ops are enqueued in order and may run asynchronously; errors are sticky and
 * reported by sync(). Per-call values that change between replays of a
 * captured trajectory (guidance scale, seeds, labels, t) are read from device
 * memory, never passed by value.
 */
#ifndef FT_BACKEND_H
#define FT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/flowturbo.h"

#ifdef __cplusplus
extern "C" { /* the CUDA backend (kernels/cuda) is C++ */
#endif

typedef enum { FT_BUF_F32 = 0, FT_BUF_ACT = 1 } ft_buf_type;
typedef enum { FT_EPI_NONE = 0, FT_EPI_GELU_TANH = 1, FT_EPI_SILU = 2 } ft_epilogue;
/* MATRIX: a GEMM operand (act on CUDA); VECTOR: f32 everywhere; BIAS: the f32
 * bias of a linear or conv layer, which a backend may also keep in its act type
 * next to it (CUDA: cuBLASLt and cuDNN take a fused bias in the output's
 * type); CONV: a conv weight [Cout, Cin, k, k], uploaded through
 * upload_conv_weight when the backend has it (its own layout for fm_conv),
 * else as a MATRIX. */
typedef enum { FT_WEIGHT_MATRIX = 0, FT_WEIGHT_VECTOR = 1, FT_WEIGHT_BIAS = 2, FT_WEIGHT_CONV = 3 } ft_weight_kind;

typedef struct ft_backend ft_backend;

/* The legacy default CUDA stream (cudaStream_t 0) in the event hooks, where NULL means the backend's own. */
#define FT_DEFAULT_STREAM ((void *)(uintptr_t)1)

struct ft_backend {
    const char *name;
    size_t act_size;  /* bytes per act element */
    char error[512];  /* message of the first failure (sticky) */
    void *impl;       /* backend-private state */
    int host_memory;  /* buffers are host memory and ops finish before returning (CPU): the engine reads
                         results in place, e.g. to check each sampler step for NaN / Inf */
    long max_attention_tokens; /* longest sequence attention() supports (0: no limit known); the engine
                                  refuses longer ones before any work */

    /* ---- lifetime, memory, transfers ---- */
    void (*destroy)(ft_backend *be);
    void (*set_threads)(ft_backend *be, int n_threads);
    ft_status (*alloc)(ft_backend *be, size_t bytes, void **ptr);
    void (*free)(ft_backend *be, void *ptr);
    ft_status (*upload)(ft_backend *be, void *dst, const void *src, size_t bytes);
    ft_status (*download)(ft_backend *be, void *dst, const void *src, size_t bytes);
    /* Bytes a weight of n elements occupies (before alignment). */
    size_t (*weight_size)(ft_backend *be, ft_weight_kind kind, size_t n);
    /* Converts n host elements of src_dtype into the backend's weight layout. */
    ft_status (*upload_weight)(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype,
                               size_t n, ft_weight_kind kind);
    /* Optional: a linear layer's weight W [rows, cols] (y = x W^T) in the layout linear() reads; without it,
     * upload_weight. */
    ft_status (*upload_linear_weight)(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, int rows,
                                      int cols);
    /* Optional: an FT_WEIGHT_CONV [cout, cin, k, k] in the layout fm_conv reads. */
    ft_status (*upload_conv_weight)(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype,
                                    int cout, int cin, int k);
    /* Waits for enqueued work; returns the sticky status. */
    ft_status (*sync)(ft_backend *be);
    /* Runs fn(user) on the host in stream order (progress reporting). */
    void (*host_fn)(ft_backend *be, void (*fn)(void *user), void *user);

    /* ---- trajectory capture (NULL on backends without graphs) ---- */
    /* begin_capture returns FT_OK when ops until end_capture are recorded into
     * *graph instead of run; replay runs a recorded graph. */
    ft_status (*begin_capture)(ft_backend *be);
    ft_status (*end_capture)(ft_backend *be, void **graph);
    ft_status (*replay)(ft_backend *be, void *graph);
    void (*graph_free)(ft_backend *be, void *graph);

    /* ---- GEMM ---- */
    /* y[M,N] (f32 or act) = epilogue(x[M,K] (act) W^T + bias); bias may be NULL. */
    void (*linear)(ft_backend *be, void *y, ft_buf_type y_type, const void *x, const void *w,
                   const float *bias, int M, int N, int K, ft_epilogue epi);
    /* dst = src converted between f32 and act (n elements). */
    void (*cast)(ft_backend *be, void *dst, ft_buf_type dst_type, const void *src,
                 ft_buf_type src_type, size_t n);

    /* ---- embeddings ---- */
    /* out[N, dim] = [cos(t*f_k), sin(t*f_k)], f_k = exp(-ln(10000) k / (dim/2)). */
    void (*timestep_embedding)(ft_backend *be, float *out, const float *t, int N, int dim);
    /* out[n] = (add ? out[n] : 0) + table[labels[n]], rows of D floats. */
    void (*embedding_lookup)(ft_backend *be, float *out, const float *table, const int32_t *labels,
                             int N, int D, int add);
    /* tokens[N, T, D] (f32) = conv_pxp(concat_c(x[n % x_batch], v[n])) + bias + pos[T, D].
     * x has cx channels, v (may be NULL) has cv channels, both [*, c, S, S];
     * w is [D, cx+cv, p, p]; T = (S/p)^2, tokens in row-major patch order. */
    void (*patch_embed)(ft_backend *be, float *tokens, const float *x, int cx, int x_batch,
                        const float *v, int cv, const void *w, const float *bias,
                        const float *pos, int N, int S, int p, int D);
    /* img[n, c, :, :] (f32, c < c_keep) from tok[N, T, p*p*c_full] (act),
     * feature (pi*p + qi)*c_full + c — the DiT unpatchify. */
    void (*unpatchify)(ft_backend *be, float *img, const void *tok, int N, int S, int p,
                       int c_full, int c_keep);

    /* ---- normalisation + adaLN ---- */
    /* h[n,t,:] (act) = LN(x[n,t,:]) * (1 + scale[n]) + shift[n]; LN without
     * affine, biased variance; shift/scale rows are mod_stride floats apart. */
    void (*layernorm_modulate)(ft_backend *be, void *h, const float *x, const float *shift,
                               const float *scale, int mod_stride, int N, int T, int D, float eps);
    /* x[n,t,:] += gate[n] * a[n,t,:] (a: act); then, when h != NULL, the
     * layernorm_modulate of the updated x into h with next_shift/next_scale. */
    void (*gated_residual)(ft_backend *be, float *x, const void *a, const float *gate, void *h,
                           const float *next_shift, const float *next_scale, int mod_stride, int N,
                           int T, int D, float eps);
    /* y = GroupNorm(x) * gamma + beta, optionally followed by SiLU; x, y
     * [N, C, HW] f32; biased variance over (C/groups)*HW elements. */
    void (*group_norm)(ft_backend *be, float *y, const float *x, const float *gamma,
                       const float *beta, int N, int C, int HW, int groups, float eps, int silu);

    /* ---- attention ---- */
    /* o[n, t, h*hd + e] (act) = softmax(q k^T / sqrt(hd)) v per (n, head) from
     * qkv[n, t, (which*H + h)*hd + e] (act), which = 0 q, 1 k, 2 v. */
    void (*attention)(ft_backend *be, void *o, const void *qkv, int N, int T, int H, int hd);

    /* ---- convolution (VAE) ---- */
    /* y[N, Cout, Ho, Ho] = conv_k(x') + bias, stride 1, zero padding pad,
     * where x' = x [N, Cin, S, S] or its nearest 2x upsample when up2x. */
    void (*conv2d)(ft_backend *be, float *y, const float *x, const void *w, const float *bias,
                   int N, int Cin, int S, int Cout, int k, int pad, int up2x);

    /* ---- element-wise (f32) ---- */
    void (*silu)(ft_backend *be, float *y, const float *x, size_t n);
    /* y = a + b */
    void (*add)(ft_backend *be, float *y, const float *a, const float *b, size_t n);
    /* y = x * s */
    void (*scale)(ft_backend *be, float *y, const float *x, float s, size_t n);
    /* y[b, r, c] = x[b, c, r]: per batch item, x is [C, R] and y is [R, C]. */
    void (*transpose)(ft_backend *be, float *y, const float *x, int batch, int C, int R);
    /* Classifier-free guidance on raw [2B, C, HW] (cond rows first): channels
     * c < guided get u + s (c - u) in both halves, the rest stay per half.
     * v may alias raw. *scale is read from device memory. */
    void (*cfg_combine)(ft_backend *be, float *v, const float *raw, int B, int C, int HW,
                        const float *scale, int guided);
    /* out = x + h * d   (n elements; d may be longer, its first n are used) */
    void (*euler_update)(ft_backend *be, float *out, const float *x, const float *d, float h,
                         size_t n);
    /* out = x + (h / 2) * (d + e) */
    void (*heun_update)(ft_backend *be, float *out, const float *x, const float *d,
                        const float *e, float h, size_t n);
    /* out[b] = standard normal noise of per_image floats from seeds[b]
     * (Philox4x32-10 + Box-Muller, kernels/common/philox.h). */
    void (*randn)(ft_backend *be, float *out, size_t per_image, int n_images,
                  const uint64_t *seeds);
    /* rgb[n, y, x, 3] = trunc(clamp(127.5 img + 128, 0, 255)); img [N, C, S, S]
     * with C = 3, or C = 1 replicated to grey. */
    void (*to_rgb8)(ft_backend *be, uint8_t *rgb, const float *img, int N, int C, int S);

    /* dst pixel (n, y, x) at byte n * image_pitch + y * row_pitch + x * pixel size: RGBA of img [N, C, S, S]
     * (C = 3, or C = 1 replicated to grey) in format: FT_PIXELS_RGBA8 the to_rgb8 bytes with alpha 255,
     * FT_PIXELS_RGBA_F32 clamp(0.5 v + 0.5, 0, 1) with alpha 1 (kernels/common/pixels.h). Bytes between
     * rows and images are not written. */
    void (*to_pixels)(ft_backend *be, void *dst, ft_pixel_format format, size_t row_pitch, size_t image_pitch,
                      const float *img, int N, int C, int S);
    /* ---- VAE feature maps in act NHWC (optional: NULL on backends without
     * them, whose VAE runs on the f32 NCHW ops above; engine/vae.c) ----
     * A feature map ("fm") is [N, S, S, C] act values. Conv weights are
     * FT_WEIGHT_CONV, conv biases FT_WEIGHT_BIAS. */
    /* y (fm) = x[n, c, :, :] (f32 NCHW) * scale */
    void (*fm_from_nchw)(ft_backend *be, void *y, const float *x, int N, int C, int S, float scale);
    /* y[n, c, :, :] (f32 NCHW) = x (fm) */
    void (*fm_to_nchw)(ft_backend *be, float *y, const void *x, int N, int C, int S);
    /* Bytes of workspace fm_conv needs for this problem (at most; it chooses
     * its algorithm here, once per problem). */
    size_t (*fm_conv_workspace)(ft_backend *be, int N, int Cin, int S, int Cout, int k, int pad, int up2x);
    /* y (fm) = conv_k(x') + bias (+ residual), stride 1, zero padding pad,
     * x' = x or its nearest 2x upsample; residual (fm, may be NULL) must not
     * alias x; y must alias neither x nor residual. */
    void (*fm_conv)(ft_backend *be, void *y, const void *x, const void *w, const float *bias, const void *residual,
                    int N, int Cin, int S, int Cout, int k, int pad, int up2x, void *workspace, size_t workspace_bytes);
    /* y (fm) = GroupNorm(x) * gamma + beta (then SiLU), fp32 statistics. */
    void (*fm_group_norm)(ft_backend *be, void *y, const void *x, const float *gamma, const float *beta, int N,
                          int C, int HW, int groups, float eps, int silu);
    /* y = a + b, n act values (y may alias a or b). */
    void (*fm_add)(ft_backend *be, void *y, const void *a, const void *b, size_t n);

    /* ---- optional hooks (NULL on backends without them; the engine checks) ---- */
    /* A public call begins / ends on the calling thread: the CPU backend sets
     * the thread count of this thread's OpenMP regions at enter and, at
     * leave, restores it and releases its worker threads (none is left
     * spinning or waiting between calls). */
    void (*enter)(ft_backend *be);
    void (*leave)(ft_backend *be);
    /* Caller streams (CUDA events; NULL on the CPU backend). stream NULL is
     * the backend's own stream; a caller stream is a cudaStream_t as void *
     * (its NULL, the legacy default stream, is passed as FT_DEFAULT_STREAM). */
    ft_status (*event_create)(ft_backend *be, void **event);
    void (*event_destroy)(ft_backend *be, void *event);
    /* event marks the work enqueued on stream so far */
    ft_status (*event_record)(ft_backend *be, void *event, void *stream);
    /* work enqueued on stream from now on waits for event (no host wait) */
    ft_status (*stream_wait_event)(ft_backend *be, void *stream, void *event);
    /* the host waits for event / 1 when reached, 0 when not yet (errors are sticky in be->error) */
    ft_status (*event_sync)(ft_backend *be, void *event);
    int (*event_query)(ft_backend *be, void *event);
    /* Profiler ranges (NVTX on CUDA) around sampler blocks, network calls and
     * stages; ranges nest. Recorded when ops are enqueued (eager runs and
     * graph capture), not on graph replay. */
    void (*range_push)(ft_backend *be, const char *name);
    void (*range_pop)(ft_backend *be);
    /* The tail of one network call in a single pass (engine/plan.c); NULL
     * means the engine composes cfg_combine, add and euler/heun_update:
     *   v[r] = G(raw)[r] + (base ? base[r] : 0)   for the nb rows of C*HW floats,
     *          nb = 2B and G = cfg_combine(B, C, HW, scale, guided_channels)
     *          when guided, else nb = B and G = identity;
     *   then, when x_out != NULL, over the first B*C*HW floats:
     *          x_out = x_in + h * v               (d == NULL: euler_update)
     *          x_out = x_in + (h / 2) * (d + v)   (d != NULL: heun_update).
     * v may alias raw and x_out may alias x_in. The values equal the composed
     * ops' (same float operations in the same order). */
    void (*velocity_tail)(ft_backend *be, float *v, const float *raw, const float *base, int B, int guided,
                          int C, int HW, const float *scale, int guided_channels, float *x_out, const float *x_in,
                          const float *d, float h);
    /* Host memory that download() fills fastest: pinned (page-locked) on CUDA, so the copy is one DMA that
     * overlaps other streams' work; NULL on backends where malloc is as good (the CPU). */
    void *(*host_alloc)(ft_backend *be, size_t bytes);
    void (*host_free)(ft_backend *be, void *ptr);
    /* The act type (FT_DTYPE_BF16 / FT_DTYPE_F16; both 2 bytes) of the ops enqueued, plans sized and weights
     * uploaded from now on; returns the previous one (NULL on the CPU, whose act type is f32). The VAE runs
     * its feature maps in f16 whatever the compute dtype: bf16's 8-bit mantissa in the stored maps moves ~2 %
     * of the decoded uint8 values by more than 2 levels, f16 none (SD-VAE ft-EMA stays in f16's range). */
    ft_dtype (*set_act_dtype)(ft_backend *be, ft_dtype act);
};

/* Creates a backend; on failure returns NULL and writes the reason to err. */
ft_backend *ft_backend_create(ft_backend_kind kind, int device, int n_threads,
                              ft_dtype compute_dtype, char *err, size_t err_size);
ft_backend *ft_backend_cpu_create(int n_threads, char *err, size_t err_size);
/* NULL with a reason when CUDA was not built in or no usable GPU exists. */
ft_backend *ft_backend_cuda_create(int device, ft_dtype compute_dtype, char *err, size_t err_size);
/* 1 when a usable CUDA device is present (any error means no). */
int ft_cuda_available(void);

/* Records the first error message of a backend (printf-style). */
void ft_backend_fail(ft_backend *be, const char *fmt, ...);

#ifdef __cplusplus
}
#endif

#endif /* FT_BACKEND_H */
