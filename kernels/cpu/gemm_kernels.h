/* kernels/cpu/gemm_kernels.h — the CPU backend's own register-tile GEMM
 * micro-kernels (defined in conv2d.c) and their users: the direct conv path
 * (conv2d.c), the Winograd convs (conv_winograd.c) and the linear layers on
 * weights packed at load (linear_packed.c); x86-64 with GCC only. */
#ifndef FT_CPU_GEMM_KERNELS_H
#define FT_CPU_GEMM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_GEMM_KERNELS 1

#define KC 128 /* k values per micro-tile call: the KC x NR block of B stays in L1 */

/* p rounded up to a 64-byte boundary (scratch carving: slack of up to 15 floats). */
static inline float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* c[MR x NR] (row stride ldc) = (accumulate ? c : 0) + a . b over kc values of k, where a holds MR floats per k
 * (a packed panel) and b NR floats per k (row stride ldb). Each output is one fmadd chain over k in order. */
typedef void (*conv_ukernel)(int kc, const float *a, const float *b, size_t ldb, float *c, size_t ldc, int accumulate);

/* The same product with a read in place: row r of a at a + r * lda, its kc values consecutive. */
typedef void (*conv_ukernel_rows)(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                                  int accumulate);

typedef struct conv_kernel {
    const char *name;
    int mr, nr;
    conv_ukernel run;
    conv_ukernel_rows run_rows; /* NULL: a must be packed */
} conv_kernel;

/* The best micro-kernel the CPU enables (or FT_CPU_CONV forces), NULL for none (see conv2d.c). */
const conv_kernel *cpu_conv_best_kernel(void);
/* The micro-kernel of the direct path, NULL for OpenBLAS (see conv2d.c). */
const conv_kernel *cpu_conv_direct_kernel(void);
/* The micro-kernel of the Winograd path, NULL when it is off (see conv_winograd.c). */
const conv_kernel *cpu_conv_winograd_kernel(void);

/* 3x3 convolution, stride 1, pad 1 (optional fused nearest 2x upsample of the input) by Winograd F(2x2, 3x3);
 * returns 0 (nothing written) when the layer does not fit the scratch this way. */
int cpu_conv_winograd(const conv_kernel *kn, int threads, float *y, const float *x, const float *w,
                      const float *bias, int N, int Cin, int S, int Cout, int up2x, float *scratch,
                      size_t scratch_floats);

/* Rows [m0, m0 + mc) (row stride ldx) x the slice [k0, k0 + kc) of x into MR-row panels, as a micro-kernel's a:
 * ap[(ir * kc + k) * MR + r] = x[m0 + ir + r][k0 + k]; rows past M are zeros (see linear_packed.c). */
void cpu_pack_rows(float *ap, const float *x, int M, int ldx, int m0, int mc, int k0, int kc, int MR);

/* The kernel the packed linear layers use (the best one; NULL when FT_CPU_LINEAR=blas or none). */
const conv_kernel *cpu_linear_kernel(void);
#endif

#endif
