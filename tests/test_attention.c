/* tests/test_attention.c — the CPU backend's attention (kernels/cpu/attention.c) on both of its paths, the own
 * micro-kernels (S^T = K Q^T, column softmax, O^T = V^T P^T; with the CPU's best kernel and with the AVX-512
 * kernel's 8x48 layouts through the plain C kernel, which must give the same bits) and OpenBLAS (FT_CPU_LINEAR=blas,
 * read per call):
 * against a double-precision naive attention for the engine's shapes and their edges (sequences and head widths
 * that are not whole kernel panels, one token), every output written and finite; the same bits for 1, 2 and 3
 * threads, including a call whose heads do not all fit the scratch at once (packed in several groups). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../kernels/backend.h"
#include "test.h"

/* o[n, t, h*hd + d] = softmax_j(q_t . k_j / sqrt(hd)) v_j, in double. */
static void naive_attention(float *o, const float *qkv, int N, int T, int H, int hd) {
    int D = H * hd, ld = 3 * D;
    double *s = malloc((size_t)T * sizeof *s);
    for (int n = 0; n < N && s; n++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)n * T + t) * ld + (size_t)h * hd;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < T; j++) {
                    const float *k = qkv + ((size_t)n * T + j) * ld + D + (size_t)h * hd;
                    double acc = 0.0;
                    for (int d = 0; d < hd; d++) acc += (double)q[d] * k[d];
                    s[j] = acc / sqrt((double)hd);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < T; j++) sum += s[j] = exp(s[j] - mx);
                for (int d = 0; d < hd; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < T; j++) acc += s[j] * qkv[((size_t)n * T + j) * ld + 2 * D + (size_t)h * hd + d];
                    o[((size_t)n * T + t) * D + (size_t)h * hd + d] = (float)(acc / sum);
                }
            }
    free(s);
}

/* One call on a fresh output (NaN-filled, so a missed output shows) with the path `mode`: "own" (the CPU's best
 * kernel), "ref8x48" (the own path with the AVX-512 kernel's layouts, through the plain C 8x48 kernel) or "blas". */
static float *attend(ft_backend *be, const float *qkv, int N, int T, int H, int hd, const char *mode) {
    size_t n = (size_t)N * T * H * hd;
    float *o = malloc(n * sizeof(float));
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) o[i] = NAN;
    const char *conv = getenv("FT_CPU_CONV");
    char keep[32];
    snprintf(keep, sizeof keep, "%s", conv ? conv : "");
    if (!strcmp(mode, "ref8x48")) setenv("FT_CPU_CONV", mode, 1);
    setenv("FT_CPU_LINEAR", strcmp(mode, "blas") ? "own" : "blas", 1);
    be->attention(be, o, qkv, N, T, H, hd);
    unsetenv("FT_CPU_LINEAR");
    if (keep[0]) setenv("FT_CPU_CONV", keep, 1);
    else unsetenv("FT_CPU_CONV");
    return o;
}

TEST(attention_cpu_paths_vs_naive) {
    char e[256];
    ft_backend *be = ft_backend_cpu_create(2, e, sizeof e);
    CHECK(be != NULL, "cpu backend: %s", e);
    static const int shapes[][4] = {
        {2, 256, 6, 64}, /* SiT-S/2 with guidance */
        {1, 17, 2, 12},  /* keys not whole 4- or 8-key panels, queries not a whole 24- or 48-query block */
        {3, 50, 3, 10},  /* head width not whole 4-feature panels */
        {2, 1, 2, 8},    /* one token */
        {1, 300, 1, 72}, /* SiT-XL's head width, a sequence past 256 (OpenBLAS: query blocks) */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int N = shapes[i][0], T = shapes[i][1], H = shapes[i][2], hd = shapes[i][3];
        size_t n = (size_t)N * T * H * hd;
        float *qkv = test_random_floats(3 * n, 50 + (int)i), *ref = malloc(n * sizeof(float));
        if (!qkv || !ref) return FAIL;
        for (size_t j = 0; j < 3 * n; j++) qkv[j] *= 3.0f; /* peaked softmaxes as well as flat ones */
        naive_attention(ref, qkv, N, T, H, hd);
        float *own = NULL;
        for (int p = 0; p < 3; p++) {
            const char *mode = p == 0 ? "own" : p == 1 ? "ref8x48" : "blas";
            float *o = attend(be, qkv, N, T, H, hd, mode);
            double err = o ? rel_l2(o, ref, n) : INFINITY;
            int finite = o && all_finite(o, n);
            if (!(err <= 2e-6) || !finite || be->error[0]) {
                test_note("%s path N%d T%d H%d hd%d: rel L2 %.3g, finite %d, error '%s'", mode, N, T, H, hd, err, finite,
                          be->error);
                ok = 0;
            }
            if (p == 0) own = o, o = NULL;
            else if (p == 1 && own && o && memcmp(own, o, n * sizeof(float))) /* the same chains in both */
                test_note("N%d T%d H%d hd%d: the 8x48 layouts give other bits than the best kernel's", N, T, H, hd), ok = 0;
            free(o);
        }
        free(own), free(qkv), free(ref);
    }
    be->destroy(be);
    return ok ? PASS : FAIL;
}

/* 1, 2 and 3 threads give the same bits: the SiT-S/2 shape (each thread packs whole heads and runs their blocks),
 * and 5 heads of 24 tokens x 24000 features, which 2 and 3 threads do not share out evenly (so the heads are packed
 * first, then the blocks are shared out) and which do not fit the 8M-float scratch at once (so the heads go in
 * groups, 4 + 1 with 2 threads, 3 + 2 with 3). */
TEST(attention_cpu_bits_fixed) {
    static const int shapes[][4] = {{2, 256, 6, 64}, {1, 24, 5, 24000}};
    int ok = 1;
    for (size_t i = 0; i < 2 && ok; i++) {
        int N = shapes[i][0], T = shapes[i][1], H = shapes[i][2], hd = shapes[i][3];
        size_t n = (size_t)N * T * H * hd, diff = 0;
        float *qkv = test_random_floats(3 * n, 60 + (int)i), *o[3] = {0};
        ok &= qkv != NULL;
        for (int t = 0; ok && t < 3; t++) {
            char e[256];
            ft_backend *be = ft_backend_cpu_create(t + 1, e, sizeof e);
            ok &= be != NULL;
            if (be) o[t] = attend(be, qkv, N, T, H, hd, "own"), ok &= o[t] && !be->error[0], be->destroy(be);
        }
        for (int t = 1; ok && t < 3; t++)
            for (size_t j = 0; j < n; j++) diff += memcmp(&o[t][j], &o[0][j], 4) != 0;
        if (ok && i == 1) { /* right, too (the grouped calls of 2 and 3 threads must equal it bit for bit) */
            float *ref = malloc(n * sizeof(float));
            if (ref) naive_attention(ref, qkv, N, T, H, hd);
            double err = ref ? rel_l2(o[0], ref, n) : INFINITY;
            if (!(err <= 1e-5)) test_note("grouped heads: rel L2 %.3g", err), ok = 0; /* float sums of 24000 terms */
            free(ref);
        }
        if (diff) test_note("N%d T%d H%d hd%d: %zu outputs differ across thread counts", N, T, H, hd, diff), ok = 0;
        free(qkv);
        for (int t = 0; t < 3; t++) free(o[t]);
    }
    return ok ? PASS : FAIL;
}
