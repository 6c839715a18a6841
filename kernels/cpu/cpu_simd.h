/* kernels/cpu/cpu_simd.h — what the CPU backend runs on this machine: the
 * SIMD level of its hot loops (the target clone gcc's resolver picks, see
 * vec_math.h) and the BLAS, for `flowturbo info --cpu` and the benchmarks. */
#ifndef FT_CPU_SIMD_H
#define FT_CPU_SIMD_H

#include <stddef.h>

/* The SIMD path, e.g. "AVX2+FMA (x86-64-v3 clones)". */
const char *cpu_simd_path(void);
/* Why: the CPU's feature bits (CPUID) and the register state the OS enables (XCR0), e.g.
 * "cpuid: avx2=yes fma=yes avx512f=no; os (XCR0 0x2e7): ymm state=on, zmm state=on". */
void cpu_simd_reason(char *buf, size_t cap);
/* The path of the 3x3 convolutions (conv2d.c: Winograd or direct, own micro-kernel or OpenBLAS; FT_CPU_CONV and
 * FT_CPU_WINOGRAD force one). */
const char *cpu_conv_path(void);
/* The path of the linear layers (linear_packed.c: own micro-kernel on weights packed at load, or OpenBLAS;
 * FT_CPU_LINEAR=blas forces OpenBLAS for weights loaded after it is set). */
const char *cpu_linear_path(void);
/* The BLAS and its build (openblas_get_config(), core). */
void cpu_blas_describe(char *buf, size_t cap);

#endif
