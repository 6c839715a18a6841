/*
 * kernels/cpu/cpu_ops.h — the CPU backend's op implementations (fp32, own
 * GEMM micro-kernels (gemm_kernels.h), OpenBLAS sgemm, OpenMP). One op
 * family per .c file; this header is what cpu_backend.c wires into the
 * ft_backend table.
 */
#ifndef FT_CPU_OPS_H
#define FT_CPU_OPS_H

#include "../backend.h"

/* Parallel regions only pay off above this many elements of work; below it
 * the fork/join (and spinning threads on a loaded machine) cost more. */
#define CPU_PAR_MIN 32768

/* gemm.c */
/* C[M,N] = alpha * sum over s < terms of A_s op(B_s), op(B) = B^T when trans_b, with A_s = A + s * a_step and
 * B_s = B + b_off[s] (b_off NULL: one term at B); row-major. Bit-identical for any thread count (see gemm.c). */
void cpu_sgemm_sum(ft_backend *be, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   size_t a_step, const float *B, int ldb, const size_t *b_off, int terms, float *C, int ldc);
void cpu_linear(ft_backend *be, void *y, ft_buf_type y_type, const void *x, const void *w,
                const float *bias, int M, int N, int K, ft_epilogue epi);
void cpu_cast(ft_backend *be, void *dst, ft_buf_type dst_type, const void *src, ft_buf_type src_type,
              size_t n);
/* embed.c */
void cpu_timestep_embedding(ft_backend *be, float *out, const float *t, int N, int dim);
void cpu_embedding_lookup(ft_backend *be, float *out, const float *table, const int32_t *labels, int N,
                          int D, int add);
void cpu_patch_embed(ft_backend *be, float *tokens, const float *x, int cx, int x_batch, const float *v,
                     int cv, const void *w, const float *bias, const float *pos, int N, int S, int p, int D);
void cpu_unpatchify(ft_backend *be, float *img, const void *tok, int N, int S, int p, int c_full,
                    int c_keep);
/* norm.c */
void cpu_layernorm_modulate(ft_backend *be, void *h, const float *x, const float *shift, const float *scale,
                            int mod_stride, int N, int T, int D, float eps);
void cpu_gated_residual(ft_backend *be, float *x, const void *a, const float *gate, void *h,
                        const float *next_shift, const float *next_scale, int mod_stride, int N, int T,
                        int D, float eps);
void cpu_group_norm(ft_backend *be, float *y, const float *x, const float *gamma, const float *beta, int N,
                    int C, int HW, int groups, float eps, int silu);
/* attention.c */
void cpu_attention(ft_backend *be, void *o, const void *qkv, int N, int T, int H, int hd);
/* The longest sequence whose score blocks fit a scratch of that many floats. */
long cpu_attention_max_tokens(size_t scratch_floats);
/* conv2d.c */
void cpu_conv2d(ft_backend *be, float *y, const float *x, const void *w, const float *bias, int N, int Cin,
                int S, int Cout, int k, int pad, int up2x);
/* elementwise.c */
void cpu_silu(ft_backend *be, float *y, const float *x, size_t n);
void cpu_add(ft_backend *be, float *y, const float *a, const float *b, size_t n);
void cpu_scale(ft_backend *be, float *y, const float *x, float s, size_t n);
void cpu_transpose(ft_backend *be, float *y, const float *x, int batch, int C, int R);
void cpu_cfg_combine(ft_backend *be, float *v, const float *raw, int B, int C, int HW, const float *scale,
                     int guided);
void cpu_euler_update(ft_backend *be, float *out, const float *x, const float *d, float h, size_t n);
void cpu_heun_update(ft_backend *be, float *out, const float *x, const float *d, const float *e, float h,
                     size_t n);
void cpu_to_rgb8(ft_backend *be, uint8_t *rgb, const float *img, int N, int C, int S);
/* pixels.c */
void cpu_to_pixels(ft_backend *be, void *dst, ft_pixel_format format, size_t row_pitch, size_t image_pitch,
                   const float *img, int N, int C, int S);
/* rng.c */
void cpu_randn(ft_backend *be, float *out, size_t per_image, int n_images, const uint64_t *seeds);

/* linear_packed.c: linear layers on weights packed at load (own micro-kernels). Returns 1 when it ran the call
 * (or flagged an error), 0 when W is in the plain layout. */
int cpu_linear_packed(ft_backend *be, float *y, const float *x, const float *w, const float *bias, int M, int N,
                      int K, ft_epilogue epi);
ft_status cpu_upload_linear_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, int rows,
                                   int cols);
/* y (row stride ldy) = x W^T + bias with W in the plain layout [N, K] (gemm.c). */
void cpu_linear_plain(ft_backend *be, float *y, size_t ldy, const float *x, const float *w, const float *bias, int M,
                      int N, int K, ft_epilogue epi);
/* The bias + activation epilogue of one output row (gemm.c). */
void cpu_epilogue_row(float *row, const float *bias, int N, ft_epilogue epi);

/* A linear weight the backend holds (linear_packed.c): rows x cols at w, packed in panels of nr rows for `kernel`
 * (nr 0, kernel NULL: the plain layout, e.g. a part of a weight slot whose rows are not whole panels). */
struct conv_kernel;
typedef struct {
    const float *w;
    int rows, cols, nr;
    const struct conv_kernel *kernel;
} cpu_packed_region;
/* The registry is one per process (contexts sharing a model use its weights from their own backends), guarded by
 * a lock. cpu_packed_count: the regions registered now; cpu_packed_find: whether w starts a region, and its nr. */
ft_status cpu_packed_add(const float *w, int rows, int cols, int nr, const struct conv_kernel *kn);
void cpu_packed_forget(const void *lo, const void *hi); /* drops the regions starting in [lo, hi) */
int cpu_packed_count(void);
int cpu_packed_find(const float *w, int *nr);

/* Scratch owned by the backend (conv2d tiles, attention score blocks). */
float *cpu_scratch(ft_backend *be, size_t *n_floats);
/* Threads the backend was configured with (OpenMP regions and OpenBLAS). */
int cpu_threads(ft_backend *be);

#endif
