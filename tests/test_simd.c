/* tests/test_simd.c — the CPU backend's hot loops stay vectorised in every
 * SIMD path: the AVX2 (x86-64-v3) and AVX-512 (x86-64-v4) clones of each hot
 * function (vec_math.h) hold packed 256- / 512-bit instructions of the kind
 * their loops need, the baseline clone packed SSE ones (objdump of the built
 * library). Guards against a change that makes gcc fall back to scalar code,
 * as the float clamps in the exp approximation once did on AVX2 and SSE
 * ("control flow in loop"). And `flowturbo info --cpu` names the path that
 * libgcc's resolver takes on this machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/cpu_simd.h"
#include "../kernels/cpu/vec_math.h"
#include "test.h"

/* A hot function and what its clones must hold: `exps` packed float-to-int
 * conversions ((v)cvttps2dq, one per vectorised exp loop: the 2^n of vexpf),
 * the packed `op` (SSE name; the VEX form "v..." matches too) at least `ops`
 * times, each on the clone's vector registers. */
typedef struct {
    const char *fn;
    int exps;
    const char *op;
    int ops;
} hot_fn;

static const hot_fn hot[] = {
    {"cpu_epilogue_row", 2, "addps", 1}, /* bias, GELU and SiLU loops (gemm.c) */
    {"softmax_row", 1, "maxps", 1},   /* max, exp + sum, scale (attention.c) */
    {"gn_group", 1, "mulps", 2},      /* statistics, normalise + SiLU (norm.c) */
    {"ln_mod_row", 0, "mulps", 3},    /* statistics, normalise + modulate (norm.c) */
    {"gated_add_row", 0, "mulps", 1}, /* gated residual (norm.c) */
    {"silu_span", 1, "divps", 1},     /* SiLU (elementwise.c) */
    {"transform_patches", 0, "subps", 8}, /* Winograd input transform (conv_winograd.c) */
    {"transform_outputs", 0, "addps", 8}, /* Winograd output transform, both variants (conv_winograd.c) */
};
#define N_HOT (int)(sizeof hot / sizeof hot[0])

/* The library objdump reads: FT_SIMD_LIB, else libflowturbo.a beside the CLI. */
static const char *library(void) {
    static char path[4096];
    const char *env = getenv("FT_SIMD_LIB");
    if (env) return env;
    const char *cli = test_cli();
    const char *slash = strrchr(cli, '/');
    snprintf(path, sizeof path, "%.*slibflowturbo.a", slash ? (int)(slash - cli + 1) : 0, cli);
    return path;
}

typedef struct {
    int found, exps, ops;
} clone_count;

/* Counts, per hot function, the packed instructions (register `reg`: "ymm" or "zmm") in its `suffix` clone. */
static int count_clones(const char *suffix, const char *reg, clone_count *cnt) {
    char cmd[8192], line[1024];
    snprintf(cmd, sizeof cmd, "objdump -d --no-show-raw-insn '%s' 2>/dev/null", library());
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    int cur = -1;
    while (fgets(line, sizeof line, p)) {
        char *lt = strchr(line, '<'), *gt = lt ? strstr(lt, ">:") : NULL;
        if (gt && line[0] != ' ') { /* "0000000000000ff0 <cpu_epilogue_row.arch_x86_64_v3>:" starts a function */
            cur = -1;
            for (int i = 0; i < N_HOT; i++) {
                size_t n = strlen(hot[i].fn);
                if (!strncmp(lt + 1, hot[i].fn, n) && lt[1 + n] == '.' && !strncmp(lt + 2 + n, suffix, strlen(suffix)) &&
                    lt + 2 + n + strlen(suffix) == gt)
                    cur = i, cnt[i].found = 1;
            }
            continue;
        }
        if (cur < 0 || !strstr(line, reg)) continue;
        if (strstr(line, "cvttps2dq")) cnt[cur].exps++;
        char op[32];
        snprintf(op, sizeof op, "%s ", hot[cur].op);
        if (strstr(line, op)) cnt[cur].ops++;
    }
    return pclose(p) == 0;
}

static test_result check_clones(const char *suffix, const char *reg) {
    if (!CPU_VEC_HAS_CLONES) SKIP_BECAUSE("this build has no target clones (not gcc on x86-64, or a sanitizer build)");
#ifndef __OPTIMIZE__
    SKIP_BECAUSE("an unoptimised build (no -O): gcc vectorises nothing there");
#endif
    if (test_run("command -v objdump >/dev/null 2>&1") != 0) SKIP_BECAUSE("objdump (binutils) is not installed");
    clone_count cnt[N_HOT] = {{0}};
    CHECK(count_clones(suffix, reg, cnt), "objdump -d %s failed", library());
    int ok = 1;
    for (int i = 0; i < N_HOT; i++) {
        const hot_fn *h = &hot[i];
        if (!cnt[i].found || cnt[i].exps < h->exps || cnt[i].ops < h->ops) {
            test_note("%s.%s: %s; %d packed %s cvttps2dq (want >= %d: exp loops), %d packed %s %s (want >= %d)",
                      h->fn, suffix, cnt[i].found ? "found" : "NOT FOUND", cnt[i].exps, reg, h->exps, cnt[i].ops, reg,
                      h->op, h->ops);
            ok = 0;
        }
    }
    CHECK(ok, "a hot loop of the CPU backend is not vectorised in its %s clone (%s): see gcc -fopt-info-vec-missed",
          suffix, library());
    return PASS;
}

TEST(simd_avx2_clones_of_hot_loops_are_vectorised) { return check_clones("arch_x86_64_v3", "%ymm"); }

TEST(simd_avx512_clones_of_hot_loops_are_vectorised) { return check_clones("arch_x86_64_v4", "%zmm"); }

TEST(simd_sse2_default_clones_of_hot_loops_are_vectorised) { return check_clones("default", "%xmm"); }

/* The path info --cpu prints is the one the resolver takes (the same libgcc
 * test); and it is one of the three a gcc x86-64 build has. */
TEST(simd_info_cpu_names_the_path) {
    char out[4096];
    CHECK(test_cli_run(out, sizeof out, "info --cpu") == 0, "%s", out);
    char want[256];
    snprintf(want, sizeof want, "cpu simd: %s\n", cpu_simd_path());
    /* a build without clones (the sanitizers') runs the default CLI of the normal build: only the line is checked */
    int same_build = CPU_VEC_HAS_CLONES || getenv("FT_CLI");
    CHECK(strstr(out, same_build ? want : "cpu simd: ") != NULL, "want \"%s\" in:\n%s", want, out);
    CHECK(strstr(out, "cpu features: ") && strstr(out, "cpu conv: ") && strstr(out, "cpu linear: ") &&
              strstr(out, "blas: OpenBLAS"), "%s", out);
    if (CPU_VEC_HAS_CLONES)
        CHECK(strstr(out, "AVX-512") || strstr(out, "AVX2+FMA") || strstr(out, "baseline SSE2"), "%s", out);
    CHECK(test_cli_run(out, sizeof out, "info --cpu --no-such-flag") != 0, "%s", out);
    return PASS;
}

/* vexpf's integer clamp equals the float clamp it replaced, NaN -> -87.3 included (checked over all 2^32 inputs
 * once; here every 65537th bit pattern plus the edges, to stay fast). */
static float float_clamp(float x) {
    x = x > -87.3f ? x : -87.3f;
    return x < 88.3f ? x : 88.3f;
}

static int clamp_differs(uint32_t u) {
    float x, a, b;
    memcpy(&x, &u, sizeof x);
    a = float_clamp(x), b = vexp_clamp(x);
    if (!memcmp(&a, &b, sizeof a)) return 0;
    test_note("bits 0x%08x: float clamp %a, vexp_clamp %a", u, a, b);
    return 1;
}

TEST(simd_vexp_clamp_equals_the_float_clamp) {
    const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
                              0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0xFFFFFFFFu, VEXP_LO_BITS, VEXP_LO_BITS - 1,
                              VEXP_LO_BITS + 1, VEXP_HI_BITS, VEXP_HI_BITS - 1, VEXP_HI_BITS + 1};
    int bad = 0;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) bad += clamp_differs(edges[i]);
    for (uint64_t u = 0; u < (1ull << 32) && bad < 5; u += 65537) bad += clamp_differs((uint32_t)u);
    CHECK(!bad, "inputs differ");
    return PASS;
}
