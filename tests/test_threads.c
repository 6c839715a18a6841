/* tests/test_threads.c — outputs independent of the CPU thread count and of
 * concurrent contexts: the backend's GEMM and conv at shapes where a
 * multi-threaded OpenBLAS splits the work, whole generations with the
 * embedded Fashion-MNIST model from 1, 2 and 3 threads and from two contexts
 * running at once, and sample-fid archives (uninterrupted and resumed with
 * another -t) byte for byte. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../kernels/backend.h"
#include "test.h"

/* y = x W^T at 2048 x 384 x 128 (the embedded model's qkv at batch 16) and a
 * 3x3 conv, on backends with 1, 2 and 3 threads: every bit must agree. */
TEST(threads_cpu_gemm_and_conv_bit_identical) {
    const int M = 2048, N = 384, K = 128, CI = 32, CO = 64, S = 48;
    float *x = test_random_floats((size_t)M * K, 1), *w = test_random_floats((size_t)N * K, 2);
    float *cx = test_random_floats((size_t)2 * CI * S * S, 3), *cw = test_random_floats((size_t)CO * CI * 9, 4);
    float *cb = test_random_floats(CO, 5);
    float *y[3], *cy[3];
    int ok = x && w && cx && cw && cb;
    for (int t = 0; t < 3; t++) {
        char e[256];
        ft_backend *be = ft_backend_cpu_create(t + 1, e, sizeof e);
        y[t] = malloc((size_t)M * N * sizeof(float));
        cy[t] = malloc((size_t)2 * CO * S * S * sizeof(float));
        ok &= be && y[t] && cy[t];
        if (be && ok) {
            be->linear(be, y[t], FT_BUF_F32, x, w, NULL, M, N, K, FT_EPI_NONE);
            be->conv2d(be, cy[t], cx, cw, cb, 2, CI, S, CO, 3, 1, 0);
            ok &= be->sync(be) == FT_OK;
        }
        if (be) be->destroy(be);
    }
    size_t lin_diff = 0, conv_diff = 0;
    for (int t = 1; ok && t < 3; t++) {
        for (size_t i = 0; i < (size_t)M * N; i++) lin_diff += memcmp(&y[t][i], &y[0][i], 4) != 0;
        for (size_t i = 0; i < (size_t)2 * CO * S * S; i++) conv_diff += memcmp(&cy[t][i], &cy[0][i], 4) != 0;
    }
    for (int t = 0; t < 3; t++) free(y[t]), free(cy[t]);
    free(x), free(w), free(cx), free(cw), free(cb);
    CHECK(ok, "setup failed");
    CHECK(lin_diff == 0 && conv_diff == 0, "outputs differ from the 1-thread ones: linear %zu, conv %zu elements",
          lin_diff, conv_diff);
    return PASS;
}

#define GEN_N 8
#define GEN_PIXELS (GEN_N * 32 * 32 * 3)

typedef struct {
    int threads;
    uint8_t images[GEN_PIXELS];
    float latents[GEN_N * 32 * 32];
    int ok;
    char err[256];
} gen_job;

/* The embedded Fashion-MNIST SiT + refiner, 8 images (one batch of 8 with guidance: 1024-row GEMMs). */
static void *generate_job(void *arg) {
    gen_job *j = arg;
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = j->threads;
    ft_context *ctx = ft_context_new(&cp);
    j->ok = ft_load_embedded(ctx, FT_ROLE_PREDICTOR) == FT_OK && ft_load_embedded(ctx, FT_ROLE_REFINER) == FT_OK;
    int labels[GEN_N];
    for (int i = 0; i < GEN_N; i++) labels[i] = i % 10;
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = GEN_N;
    gp.labels = labels;
    gp.sampler = "H1R1";
    gp.seed = 3;
    j->ok = j->ok && ft_generate(ctx, &gp, j->latents, j->images) == FT_OK;
    snprintf(j->err, sizeof j->err, "%s", ft_last_error(ctx));
    ft_context_free(ctx);
    return NULL;
}

static size_t count_diff(const void *a, const void *b, size_t n, size_t item) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp((const char *)a + i * item, (const char *)b + i * item, item) != 0;
    return d;
}

TEST(threads_generate_same_bytes_for_1_2_3_threads) {
    static gen_job jobs[3];
    for (int t = 0; t < 3; t++) {
        jobs[t].threads = t + 1;
        generate_job(&jobs[t]);
        CHECK(jobs[t].ok, "-t %d: %s", t + 1, jobs[t].err);
    }
    for (int t = 1; t < 3; t++) {
        size_t dl = count_diff(jobs[t].latents, jobs[0].latents, GEN_N * 32 * 32, 4);
        size_t dp = count_diff(jobs[t].images, jobs[0].images, GEN_PIXELS, 1);
        CHECK(dl == 0 && dp == 0, "%d threads vs 1: %zu latents and %zu pixel bytes differ", t + 1, dl, dp);
    }
    return PASS;
}

TEST(threads_concurrent_contexts_same_bytes) {
    static gen_job ref, jobs[2];
    ref.threads = 1;
    generate_job(&ref);
    CHECK(ref.ok, "%s", ref.err);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i].threads = 2;
        CHECK(pthread_create(&th[i], NULL, generate_job, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK(jobs[i].ok, "context %d: %s", i, jobs[i].err);
        size_t dp = count_diff(jobs[i].images, ref.images, GEN_PIXELS, 1);
        size_t dl = count_diff(jobs[i].latents, ref.latents, GEN_N * 32 * 32, 4);
        CHECK(dl == 0 && dp == 0, "concurrent context %d (2 threads) vs one context (1 thread): %zu latents and %zu "
              "pixel bytes differ", i, dl, dp);
    }
    return PASS;
}

/* sample-fid with the Fashion-MNIST model file: 8 images in batches of 4 (512-row GEMMs). */
#define FID_FASHION "sample-fid -m host/models/fashion_sit.safetensors --backend cpu --sampler heun:1 --num 8 " \
                    "--batch 4 --cfg-scale 2 --seed 5"

static char out[65536];

static int same_file(const char *a, const char *b) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return test_run(cmd) == 0;
}

TEST(threads_sample_fid_npz_identical_and_resume_with_other_threads) {
    const char *npz[3];
    for (int t = 0; t < 3; t++) {
        char name[32];
        snprintf(name, sizeof name, "t%d.npz", t + 1);
        npz[t] = test_tmp_path("threads_", name);
        int rc = test_cli_run(out, sizeof out, FID_FASHION " -t %d --out %s", t + 1, npz[t]);
        CHECK(rc == 0, "-t %d: rc %d: %s", t + 1, rc, out);
    }
    CHECK(same_file(npz[0], npz[1]) && same_file(npz[0], npz[2]), "the archives of -t 1, 2, 3 differ");
    /* killed after the first batch at -t 1, resumed at -t 3 */
    const char *resumed = test_tmp_path("threads_", "resumed.npz");
    int rc = test_cli_run(out, sizeof out, FID_FASHION " -t 1 --out %s --stop-after 4", resumed);
    CHECK(rc != 0 && !test_file_exists(resumed), "the simulated crash did not stop the run: %s", out);
    rc = test_cli_run(out, sizeof out, FID_FASHION " -t 3 --out %s", resumed);
    CHECK(rc == 0 && strstr(out, "resuming"), "resume at -t 3: rc %d: %s", rc, out);
    CHECK(same_file(npz[1], resumed), "a run resumed at another thread count differs from an uninterrupted one");
    return PASS;
}
