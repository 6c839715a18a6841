/*
 * bench/quality/time_samplers.c — wall-clock cost of each sampler through the
 * public API (ft_generate), for the Fashion-MNIST quality-vs-cost table.
 *
 *   time_samplers -m SIT --refiner REF [--cfg-scale F] [-t THREADS] [-b BATCH]
 *                 [-n IMAGES] [--reps R] [--backend cpu|cuda] SAMPLER...
 *
 * Per sampler: one untimed warm-up call (batch images), then R timed calls of
 * n images each (labels 0..9 cycled, seed 0); prints one JSON object per line
 * with the median and minimum ms per image. Model loading is not timed.
 *
 * Build (bench/quality/quality.py does this when build/quality/time_samplers
 * is missing):
 *   gcc -std=c11 -O2 -fopenmp -D_DEFAULT_SOURCE bench/quality/time_samplers.c \
 *       build/libflowturbo.a -lopenblas -lpng -lz -lm [CUDA libs] -o build/quality/time_samplers
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../engine/flowturbo.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: time_samplers -m SIT [--refiner REF] [--cfg-scale F] [-t THREADS] [-b BATCH] "
                    "[-n IMAGES] [--reps R] [--backend cpu|cuda] SAMPLER...\n");
}

int main(int argc, char **argv) {
    const char *model = NULL, *refiner = NULL, *backend = "cpu";
    float cfg = 2.0f;
    int threads = 1, batch = 64, n = 64, reps = 3;
    const char *samplers[256];
    int n_samplers = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) model = argv[++i];
        else if (!strcmp(a, "--refiner") && has) refiner = argv[++i];
        else if (!strcmp(a, "--cfg-scale") && has) cfg = (float)atof(argv[++i]);
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has) threads = atoi(argv[++i]);
        else if ((!strcmp(a, "-b") || !strcmp(a, "--batch")) && has) batch = atoi(argv[++i]);
        else if ((!strcmp(a, "-n") || !strcmp(a, "--num")) && has) n = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && has) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--backend") && has) backend = argv[++i];
        else if (a[0] == '-') {
            usage();
            return 2;
        } else if (n_samplers < 256) samplers[n_samplers++] = a;
    }
    if (!model || n_samplers == 0 || n < 1 || reps < 1 || reps > 100) {
        usage();
        return 2;
    }
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = !strcmp(backend, "cuda") ? FT_BACKEND_CUDA : FT_BACKEND_CPU;
    cp.n_threads = threads;
    ft_context *ctx = ft_context_new(&cp);
    if (!ctx) return 1;
    if (ft_load(ctx, FT_ROLE_PREDICTOR, model) != FT_OK ||
        (refiner && ft_load(ctx, FT_ROLE_REFINER, refiner) != FT_OK)) {
        fprintf(stderr, "load: %s\n", ft_last_error(ctx));
        ft_context_free(ctx);
        return 1;
    }
    ft_output_shape shape;
    ft_get_output_shape(ctx, &shape);
    size_t per = (size_t)shape.latent_channels * shape.latent_size * shape.latent_size;
    float *out = malloc(per * (size_t)n * sizeof(float));
    int *labels = malloc((size_t)n * sizeof(int));
    if (!out || !labels) return 1;
    for (int k = 0; k < n; k++) labels[k] = k % 10;
    int rc = 0;
    for (int s = 0; s < n_samplers; s++) {
        ft_sampler_info info;
        char err[256];
        if (ft_sampler_describe(samplers[s], &info, err, sizeof err) != FT_OK) {
            fprintf(stderr, "%s\n", err);
            rc = 1;
            continue;
        }
        ft_generate_params gp;
        ft_generate_params_init(&gp);
        gp.labels = labels;
        gp.seed = 0;
        gp.sampler = samplers[s];
        gp.cfg_scale = cfg;
        gp.batch_size = batch;
        gp.num_images = batch < n ? batch : n; /* warm-up */
        if (ft_generate(ctx, &gp, out, NULL) != FT_OK) {
            fprintf(stderr, "%s: %s\n", samplers[s], ft_last_error(ctx));
            rc = 1;
            continue;
        }
        gp.num_images = n;
        double ms[100];
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            if (ft_generate(ctx, &gp, out, NULL) != FT_OK) {
                fprintf(stderr, "%s: %s\n", samplers[s], ft_last_error(ctx));
                return 1;
            }
            ms[r] = (now_s() - t0) * 1e3 / n;
        }
        qsort(ms, (size_t)reps, sizeof ms[0], cmp_double);
        printf("{\"sampler\": \"%s\", \"predictor_calls\": %d, \"refiner_calls\": %d, \"ms_per_img_median\": %.4f, "
               "\"ms_per_img_min\": %.4f, \"ms_per_img_max\": %.4f, \"reps\": %d, \"n\": %d, \"batch\": %d, "
               "\"threads\": %d, \"cfg_scale\": %g, \"backend\": \"%s\"}\n",
               info.name, info.predictor_calls, info.refiner_calls, ms[reps / 2], ms[0], ms[reps - 1], reps, n,
               batch, threads, cfg, ft_backend_name(ctx));
        fflush(stdout);
    }
    free(out);
    free(labels);
    ft_context_free(ctx);
    return rc;
}
