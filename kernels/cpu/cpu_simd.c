/* kernels/cpu/cpu_simd.c — which SIMD path and BLAS the CPU backend runs on
 * this machine. The path is the one gcc's target-clone resolver picks
 * (vec_math.h): x86-64-v4 needs AVX-512 F/BW/CD/DQ/VL, x86-64-v3 AVX2, FMA,
 * BMI1/2, F16C, LZCNT, MOVBE, each also enabled by the OS (libgcc checks XCR0,
 * so a VM that hides the 512-bit state gets the AVX2 clones). XCR0 is read
 * here too so the report says when the CPU has a feature the OS does not
 * enable. */
#include <stdio.h>
#include <cblas.h>

#include "cpu_simd.h"
#include "vec_math.h"

#if CPU_VEC_HAS_CLONES
#include <cpuid.h>

/* XCR0 (the register state the OS saves and so enables), 0 without OSXSAVE. */
static unsigned long long xcr0(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

const char *cpu_simd_path(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "AVX-512 (x86-64-v4 clones)";
    if (__builtin_cpu_supports("x86-64-v3")) return "AVX2+FMA (x86-64-v3 clones)";
    return "baseline SSE2 (x86-64 clones)";
}

/* The CPU's own feature bits (CPUID, whatever the OS enables) and XCR0. */
void cpu_simd_reason(char *buf, size_t cap) {
    unsigned a, b = 0, c = 0, d, b7 = 0, c7, d7;
    __get_cpuid(1, &a, &b, &c, &d);
    __get_cpuid_count(7, 0, &a, &b7, &c7, &d7);
    unsigned long long x = xcr0();
    snprintf(buf, cap, "cpuid: avx2=%s fma=%s avx512f=%s; os (XCR0 0x%llx): ymm state=%s, zmm state=%s",
             b7 & bit_AVX2 ? "yes" : "no", c & bit_FMA ? "yes" : "no", b7 & bit_AVX512F ? "yes" : "no", x,
             (x & 0x6) == 0x6 ? "on" : "off", (x & 0xe6) == 0xe6 ? "on" : "off");
}
#else
const char *cpu_simd_path(void) { return "compiler default (built without target clones)"; }

void cpu_simd_reason(char *buf, size_t cap) {
    snprintf(buf, cap, "this build has no per-CPU clones (not gcc on x86-64, or a sanitizer build)");
}
#endif

void cpu_blas_describe(char *buf, size_t cap) {
    snprintf(buf, cap, "%s (core %s)", openblas_get_config(), openblas_get_corename());
}
