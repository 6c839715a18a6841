/* tests/test_rng.c — the engine's Philox4x32-10 + Box-Muller noise against
 * the independent numpy port (tests/data/rng.golden.safetensors), and its
 * per-image seeding contract. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../kernels/backend.h"
#include "test.h"

TEST(rng_matches_reference_bit_for_bit) {
    golden g;
    if (!golden_open(&g, "rng.golden.safetensors")) return FAIL;
    const uint64_t seeds[] = {0, 1, 42, 4294967301ull};
    const char *names[] = {"seed.0", "seed.1", "seed.42", "seed.4294967301"};
    char e[128];
    ft_backend *be = ft_backend_cpu_create(1, e, sizeof e);
    int ok = be != NULL;
    for (int i = 0; ok && i < 4; i++) {
        size_t n = 0;
        float *want = golden_get(&g, names[i], &n), got[256], api[256];
        be->randn(be, got, 256, 1, &seeds[i]);
        ft_noise(api, 1, 4, 8, seeds[i]);
        ok &= want && n == 256 && memcmp(got, want, sizeof got) == 0 && memcmp(api, want, sizeof api) == 0;
        if (want && memcmp(got, want, sizeof got)) test_note("%s differs from the reference", names[i]);
        free(want);
    }
    if (be) be->destroy(be);
    golden_close(&g);
    return ok ? PASS : FAIL;
}

/* Image b of a call uses seed + b, independent of how many images are drawn. */
TEST(rng_image_seeds_are_batch_invariant) {
    enum { PER = 4 * 9 * 9 }; /* odd size: the last Philox block is partial */
    static float three[3 * PER], one[PER];
    ft_noise(three, 3, 4, 9, 100);
    for (int b = 0; b < 3; b++) {
        ft_noise(one, 1, 4, 9, 100 + (uint64_t)b);
        CHECK(memcmp(one, three + b * PER, sizeof one) == 0, "image %d differs from a single draw with seed+%d", b, b);
    }
    CHECK(memcmp(three, three + PER, sizeof one) != 0, "consecutive seeds gave the same noise");
    return PASS;
}

TEST(rng_is_standard_normal) {
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x);
    ft_noise(x, 1, 1, 1024, 7);
    double sum = 0, sq = 0, q4 = 0;
    size_t beyond3 = 0;
    for (int i = 0; i < N; i++) {
        sum += x[i];
        sq += (double)x[i] * x[i];
        q4 += (double)x[i] * x[i] * x[i] * x[i];
        beyond3 += fabsf(x[i]) > 3.0f;
    }
    free(x);
    double mean = sum / N, var = sq / N - mean * mean, kurt = q4 / N / (var * var);
    /* 1M samples: sd of the mean 0.001, of the variance 0.0014, of kurtosis ~0.005 */
    CHECK(fabs(mean) < 0.005 && fabs(var - 1) < 0.007 && fabs(kurt - 3) < 0.03, "mean %.4f var %.4f kurtosis %.3f",
          mean, var, kurt);
    double tail = (double)beyond3 / N; /* P(|z| > 3) = 0.0027 */
    CHECK(fabs(tail - 0.0027) < 0.0003, "P(|z|>3) = %.5f", tail);
    return PASS;
}
