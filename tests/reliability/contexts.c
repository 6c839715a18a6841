/* tests/reliability/contexts.c — concurrent contexts: T threads, each with
 * its own context (2 CPU threads each), generate the same images from the
 * Fashion-MNIST model files at once; every result must equal a single
 * context's, byte for byte. Built plain and under ThreadSanitizer (with
 * LLVM's OpenMP runtime and its archer tool) by tests/reliability/tsan.sh.
 *   contexts [THREADS] [IMAGES]   exit 0 when every context matched */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/flowturbo.h"

#define MAX_JOBS 8

typedef struct {
    int threads, n;
    uint8_t *images;
    float *latents;
    int ok;
    char err[512];
} job;

static void *run(void *arg) {
    job *j = arg;
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = j->threads;
    ft_context *ctx = ft_context_new(&cp);
    int *labels = malloc(sizeof(int) * (size_t)j->n);
    j->ok = ctx && labels && ft_load(ctx, FT_ROLE_PREDICTOR, "host/models/fashion_sit.safetensors") == FT_OK &&
            ft_load(ctx, FT_ROLE_REFINER, "host/models/fashion_refiner.safetensors") == FT_OK;
    for (int i = 0; labels && i < j->n; i++) labels[i] = i % 10;
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = j->n;
    gp.labels = labels;
    gp.sampler = "H1R1";
    gp.seed = 11;
    j->ok = j->ok && ft_generate(ctx, &gp, j->latents, j->images) == FT_OK;
    snprintf(j->err, sizeof j->err, "%s", ctx ? ft_last_error(ctx) : "out of memory");
    ft_context_free(ctx);
    free(labels);
    return NULL;
}

static int alloc_job(job *j, int threads, int n) {
    j->threads = threads;
    j->n = n;
    j->images = malloc((size_t)n * 32 * 32 * 3);
    j->latents = malloc((size_t)n * 32 * 32 * sizeof(float));
    return j->images && j->latents;
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 3, n = argc > 2 ? atoi(argv[2]) : 8;
    if (T < 1 || T > MAX_JOBS || n < 1) return fprintf(stderr, "usage: contexts [THREADS 1..8] [IMAGES]\n"), 2;
    job ref, jobs[MAX_JOBS];
    if (!alloc_job(&ref, 1, n)) return 1;
    run(&ref);
    if (!ref.ok) return fprintf(stderr, "reference context: %s\n", ref.err), 1;
    pthread_t th[MAX_JOBS];
    for (int i = 0; i < T; i++) {
        if (!alloc_job(&jobs[i], 2, n) || pthread_create(&th[i], NULL, run, &jobs[i]) != 0) return 1;
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    int bad = 0;
    for (int i = 0; i < T; i++) {
        int same = jobs[i].ok && !memcmp(jobs[i].images, ref.images, (size_t)n * 32 * 32 * 3) &&
                   !memcmp(jobs[i].latents, ref.latents, (size_t)n * 32 * 32 * sizeof(float));
        printf("context %d of %d (2 threads, %d images, concurrent): %s\n", i + 1, T, n,
               !jobs[i].ok ? jobs[i].err : same ? "identical to one context with 1 thread" : "DIFFERS");
        bad += !same;
    }
    return bad ? 1 : 0;
}
