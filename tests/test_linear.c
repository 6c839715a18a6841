/* tests/test_linear.c — the CPU backend's linear layers on weights packed at
 * load (kernels/cpu/linear_packed.c): against a double-precision naive
 * product for the shapes the engine uses and their edges (rows not a whole
 * panel, K over several KC slices, the weight-streaming few-rows loop), the
 * same bits for 1, 2 and 3 threads and for the few-rows loop and the GEMM,
 * and the registry: a weight inside a packed one is refused with a message,
 * and freeing the block forgets its regions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../kernels/backend.h"
#include "../kernels/cpu/cpu_ops.h"
#include "test.h"

static double gelu_tanh(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

static void naive_linear(float *y, const float *x, const float *w, const float *b, int M, int N, int K,
                         ft_epilogue epi) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = b ? b[n] : 0.0;
            for (int k = 0; k < K; k++) acc += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
            if (epi == FT_EPI_GELU_TANH) acc = gelu_tanh(acc);
            else if (epi == FT_EPI_SILU) acc = acc / (1.0 + exp(-acc));
            y[(size_t)m * N + n] = (float)acc;
        }
}

/* A weight uploaded as the engine uploads it (packed where the CPU can); *packed: whether it was. */
static float *upload(ft_backend *be, const float *w, int N, int K, int *packed) {
    void *p = NULL;
    if (be->alloc(be, (size_t)N * K * sizeof(float), &p) != FT_OK) return NULL;
    if (be->upload_linear_weight(be, p, w, FT_DTYPE_F32, N, K) != FT_OK) return be->free(be, p), NULL;
    int nr = 0;
    *packed = cpu_packed_find(p, &nr) && nr > 0;
    return p;
}

/* One shape on a backend: packed product vs the naive one (rel L2 <= 1e-5, every output written and finite). */
static int linear_case(ft_backend *be, int M, int N, int K, int bias, ft_epilogue epi, int *was_packed) {
    float *x = test_random_floats((size_t)M * K, 11 + M), *w = test_random_floats((size_t)N * K, 12 + N);
    float *b = test_random_floats(N, 13), *y = malloc((size_t)M * N * sizeof(float)), *r = malloc((size_t)M * N * sizeof(float));
    int ok = x && w && b && y && r;
    float *wd = ok ? upload(be, w, N, K, was_packed) : NULL;
    ok &= wd != NULL;
    if (ok) {
        for (size_t i = 0; i < (size_t)M * N; i++) y[i] = NAN;
        be->linear(be, y, FT_BUF_F32, x, wd, bias ? b : NULL, M, N, K, epi);
        naive_linear(r, x, w, bias ? b : NULL, M, N, K, epi);
        double e = rel_l2(y, r, (size_t)M * N);
        int finite = all_finite(y, (size_t)M * N);
        if (!(e <= 1e-5) || !finite || be->error[0]) {
            test_note("linear M%d N%d K%d bias%d epi%d: rel L2 %.3g, finite %d, error '%s'", M, N, K, bias, (int)epi, e,
                      finite, be->error);
            ok = 0;
        }
    }
    if (wd) be->free(be, wd);
    free(x), free(w), free(b), free(y), free(r);
    return ok;
}

TEST(linear_packed_vs_naive) {
    char e[256];
    ft_backend *be = ft_backend_cpu_create(2, e, sizeof e);
    CHECK(be != NULL, "cpu backend: %s", e);
    /* N a multiple of 48 so that both kernels (NR 24 and 48) pack it */
    static const int shapes[][3] = {
        {1, 48, 5},      {3, 96, 130},    {4, 48, 384},   /* few rows: the streaming loop */
        {5, 48, 128},    {7, 96, 257},    {130, 144, 300}, /* rows not a whole panel, K tails */
        {512, 1152, 384}, {512, 384, 1536}, {16, 2304, 96}, /* S/2 shapes; few row tasks: columns split */
    };
    int ok = 1, packed_any = 0, regions_before = cpu_packed_count();
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int v = 0; v < 3; v++) {
            int packed = 0;
            ft_epilogue epi = v == 0 ? FT_EPI_NONE : v == 1 ? FT_EPI_GELU_TANH : FT_EPI_SILU;
            ok &= linear_case(be, shapes[i][0], shapes[i][1], shapes[i][2], v != 2, epi, &packed);
            packed_any |= packed;
        }
    /* a weight whose rows are not whole panels stays plain and goes to OpenBLAS */
    int packed_odd = 1;
    ok &= linear_case(be, 9, 50, 64, 1, FT_EPI_NONE, &packed_odd);
    CHECK(!packed_odd, "a 50-row weight was packed");
    /* one slot holding two weights, the first packable, the second not (the adaLN slot of a model whose final
     * layer's rows are not whole panels): one call over both */
    {
        const int M = 6, K = 40, N1 = 96, N2 = 50, N = N1 + N2;
        float *x = test_random_floats((size_t)M * K, 41), *w = test_random_floats((size_t)N * K, 42), *b = test_random_floats(N, 43);
        float y[6 * 146], r[6 * 146];
        void *slot = NULL;
        int fine = x && w && b && be->alloc(be, (size_t)N * K * sizeof(float), &slot) == FT_OK;
        fine = fine && be->upload_linear_weight(be, slot, w, FT_DTYPE_F32, N1, K) == FT_OK &&
               be->upload_linear_weight(be, (float *)slot + (size_t)N1 * K, w + (size_t)N1 * K, FT_DTYPE_F32, N2, K) ==
                   FT_OK;
        if (fine) {
            for (int m = 1; m <= M; m += M - 1) { /* the streaming loop (1 row) and the GEMM (6 rows) */
                be->linear(be, y, FT_BUF_F32, x, slot, b, m, N, K, FT_EPI_NONE);
                naive_linear(r, x, w, b, m, N, K, FT_EPI_NONE);
                double e = rel_l2(y, r, (size_t)m * N);
                if (!(e <= 1e-5) || be->error[0]) test_note("two-part slot, %d rows: rel L2 %.3g '%s'", m, e, be->error), fine = 0;
            }
        }
        if (slot) be->free(be, slot);
        free(x), free(w), free(b);
        ok &= fine;
    }
    int n = cpu_packed_count();
    CHECK(n == regions_before, "%d weight regions registered after every weight was freed (%d before)", n,
          regions_before);
    be->destroy(be);
    if (!packed_any) test_note("no own micro-kernel on this machine / build: the plain path was checked");
    return ok ? PASS : FAIL;
}

/* Bits: 1, 2 and 3 threads agree, and one row through the streaming loop equals the same row of a GEMM. */
TEST(linear_packed_bits_fixed) {
    const int M = 520, N = 480, K = 300;
    float *x = test_random_floats((size_t)M * K, 21), *w = test_random_floats((size_t)N * K, 22), *b = test_random_floats(N, 23);
    float *y[3] = {0}, *one = malloc((size_t)N * sizeof(float));
    int ok = x && w && b && one;
    for (int t = 0; ok && t < 3; t++) {
        char e[256];
        ft_backend *be = ft_backend_cpu_create(t + 1, e, sizeof e);
        int packed;
        float *wd = be ? upload(be, w, N, K, &packed) : NULL;
        y[t] = malloc((size_t)M * N * sizeof(float));
        ok &= wd && y[t];
        if (ok) {
            be->linear(be, y[t], FT_BUF_F32, x, wd, b, M, N, K, FT_EPI_GELU_TANH);
            if (t == 0) be->linear(be, one, FT_BUF_F32, x + (size_t)(M - 1) * K, wd, b, 1, N, K, FT_EPI_GELU_TANH);
            ok &= be->sync(be) == FT_OK;
        }
        if (wd) be->free(be, wd);
        if (be) be->destroy(be);
    }
    size_t diff = 0, row_diff = 0;
    for (int t = 1; ok && t < 3; t++)
        for (size_t i = 0; i < (size_t)M * N; i++) diff += memcmp(&y[t][i], &y[0][i], 4) != 0;
    for (int n = 0; ok && n < N; n++) row_diff += memcmp(&one[n], &y[0][(size_t)(M - 1) * N + n], 4) != 0;
    CHECK(!ok || (diff == 0 && row_diff == 0), "outputs differ: %zu across thread counts, %zu in the one-row call",
          diff, row_diff);
    free(x), free(w), free(b), free(one);
    for (int t = 0; t < 3; t++) free(y[t]);
    return ok ? PASS : FAIL;
}

/* A call on a weight that starts inside a packed one cannot be served (its plain layout is gone): the backend
 * reports it instead of computing garbage. */
TEST(linear_packed_partial_weight_refused) {
    char e[256];
    ft_backend *be = ft_backend_cpu_create(1, e, sizeof e);
    CHECK(be != NULL, "cpu backend: %s", e);
    const int N = 96, K = 64;
    float *w = test_random_floats((size_t)N * K, 31), *x = test_random_floats(8 * K, 32), y[8 * 48];
    int packed = 0;
    float *wd = w && x ? upload(be, w, N, K, &packed) : NULL;
    int ok = wd != NULL;
    if (ok && packed) {
        be->linear(be, y, FT_BUF_F32, x, wd + 48 * K, NULL, 8, 48, K, FT_EPI_NONE);
        ok = strstr(be->error, "packed") != NULL;
        if (!ok) test_note("no error for a weight inside a packed one (error '%s')", be->error);
    } else if (ok) {
        test_note("weights are not packed on this machine / build");
    }
    if (wd) be->free(be, wd);
    be->destroy(be);
    free(w), free(x);
    return ok ? PASS : FAIL;
}

/* The AVX-512 kernel's layouts (8-row panels, weights in 48-row panels, the few-rows loop over 48 columns) through
 * the plain C 8x48 kernel (FT_CPU_CONV=ref8x48, read when the weight is uploaded): right against the naive product,
 * and the same bits as the AVX2 4x24 path, since every output is the same fmadd chain in both. On an AVX-512
 * machine the third side is the AVX-512 kernel itself. */
TEST(linear_packed_8x48_layouts) {
    static const int shapes[][3] = {{3, 96, 130}, {5, 96, 130}, {130, 144, 300}, {520, 480, 300}};
    const char *saved = getenv("FT_CPU_CONV");
    char keep[32];
    snprintf(keep, sizeof keep, "%s", saved ? saved : "");
    static const char *kernels[] = {"avx2", "ref8x48", ""};
    int ok = 1, ran = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        float *x = test_random_floats((size_t)M * K, 71), *w = test_random_floats((size_t)N * K, 72);
        float *b = test_random_floats(N, 73), *r = malloc((size_t)M * N * sizeof(float)), *y[3] = {0};
        if (!x || !w || !b || !r) return FAIL;
        naive_linear(r, x, w, b, M, N, K, FT_EPI_GELU_TANH);
        for (int kn = 0; kn < 3; kn++) {
            char e[256];
            if (*kernels[kn]) setenv("FT_CPU_CONV", kernels[kn], 1);
            else unsetenv("FT_CPU_CONV");
            ft_backend *be = ft_backend_cpu_create(2, e, sizeof e);
            int packed = 0;
            float *wd = be ? upload(be, w, N, K, &packed) : NULL;
            y[kn] = malloc((size_t)M * N * sizeof(float));
            if (wd && y[kn] && packed) {
                be->linear(be, y[kn], FT_BUF_F32, x, wd, b, M, N, K, FT_EPI_GELU_TANH);
                double err = rel_l2(y[kn], r, (size_t)M * N);
                if (!(err <= 1e-5) || be->error[0])
                    test_note("M%d N%d K%d, FT_CPU_CONV=%s: rel L2 %.3g '%s'", M, N, K, kernels[kn], err, be->error), ok = 0;
                ran += kn == 1;
            } else {
                free(y[kn]), y[kn] = NULL; /* no such kernel here */
            }
            if (wd) be->free(be, wd);
            if (be) be->destroy(be);
        }
        for (int kn = 1; kn < 3; kn++)
            if (y[0] && y[kn] && memcmp(y[0], y[kn], (size_t)M * N * sizeof(float)))
                test_note("M%d N%d K%d: FT_CPU_CONV=%s differs from the AVX2 kernel's bits", M, N, K, kernels[kn]), ok = 0;
        free(x), free(w), free(b), free(r);
        for (int kn = 0; kn < 3; kn++) free(y[kn]);
    }
    if (keep[0]) setenv("FT_CPU_CONV", keep, 1);
    else unsetenv("FT_CPU_CONV");
    if (!ran) return test_note("no AVX2 + FMA here: the 8x48 layouts cannot run"), SKIP;
    return ok ? PASS : FAIL;
}
