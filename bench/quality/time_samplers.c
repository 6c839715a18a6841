/*
 * bench/quality/time_samplers.c — wall-clock cost of each sampler through the
 * public API (ft_generate), for the Fashion-MNIST quality-vs-cost table.
 *
 *   time_samplers -m SIT [--refiner REF] [--refiner-as TAG=FILE ...]
 *                 [--cfg-scale F] [-t THREADS] [-b BATCH] [-n IMAGES]
 *                 [--reps R] [--backend cpu|cuda] SAMPLER[+TAG]...
 *
 * SAMPLER+TAG runs SAMPLER with the refiner loaded from --refiner-as TAG=FILE
 * (one context per refiner); a plain SAMPLER uses --refiner. Every sampler
 * first makes one untimed warm-up call (batch images); then the R timed calls
 * of n images each (labels 0..9 cycled, seed 0) are interleaved: round r
 * times every sampler once, so a load change on a shared machine hits all
 * samplers alike. Prints one JSON object per line with the median and minimum
 * ms per image (wall clock), and the median CPU time of the process per image
 * (with -t 1 it equals the wall time on an idle machine and is much less
 * disturbed by other processes on a shared one). Model loading is not timed.
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

#define MAX_SAMPLERS 256
#define MAX_REFINERS 16
#define MAX_REPS 100

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: time_samplers -m SIT [--refiner REF] [--refiner-as TAG=FILE ...] [--cfg-scale F] "
                    "[-t THREADS] [-b BATCH] [-n IMAGES] [--reps R] [--backend cpu|cuda] SAMPLER[+TAG]...\n");
}

typedef struct {
    const char *tag, *path; /* tag "" = --refiner */
    ft_context *ctx;
} refiner_ctx;

typedef struct {
    const char *spec; /* as given, e.g. "H2P4R2+guided" */
    char sampler[64];
    refiner_ctx *rc;
    ft_generate_params gp;
    ft_sampler_info info;
    double ms[MAX_REPS], cpu_ms[MAX_REPS];
} timed;

static ft_context *open_context(const char *backend, int threads, const char *model, const char *refiner) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = !strcmp(backend, "cuda") ? FT_BACKEND_CUDA : FT_BACKEND_CPU;
    cp.n_threads = threads;
    ft_context *ctx = ft_context_new(&cp);
    if (!ctx) return NULL;
    if (ft_load(ctx, FT_ROLE_PREDICTOR, model) != FT_OK || (refiner && ft_load(ctx, FT_ROLE_REFINER, refiner) != FT_OK)) {
        fprintf(stderr, "load %s: %s\n", refiner ? refiner : model, ft_last_error(ctx));
        ft_context_free(ctx);
        return NULL;
    }
    return ctx;
}

int main(int argc, char **argv) {
    const char *model = NULL, *backend = "cpu";
    float cfg = 2.0f;
    int threads = 1, batch = 64, n = 64, reps = 3;
    static timed runs[MAX_SAMPLERS];
    refiner_ctx refs[MAX_REFINERS] = {{"", NULL, NULL}};
    int n_runs = 0, n_refs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) model = argv[++i];
        else if (!strcmp(a, "--refiner") && has) refs[0].path = argv[++i];
        else if (!strcmp(a, "--refiner-as") && has && n_refs < MAX_REFINERS) {
            char *eq = strchr(argv[++i], '=');
            if (!eq || eq == argv[i]) {
                usage();
                return 2;
            }
            *eq = 0;
            refs[n_refs++] = (refiner_ctx){argv[i], eq + 1, NULL};
        } else if (!strcmp(a, "--cfg-scale") && has) cfg = (float)atof(argv[++i]);
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has) threads = atoi(argv[++i]);
        else if ((!strcmp(a, "-b") || !strcmp(a, "--batch")) && has) batch = atoi(argv[++i]);
        else if ((!strcmp(a, "-n") || !strcmp(a, "--num")) && has) n = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && has) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--backend") && has) backend = argv[++i];
        else if (a[0] == '-') {
            usage();
            return 2;
        } else if (n_runs < MAX_SAMPLERS) runs[n_runs++].spec = a;
    }
    if (!model || n_runs == 0 || n < 1 || reps < 1 || reps > MAX_REPS) {
        usage();
        return 2;
    }
    /* resolve every SAMPLER[+TAG] to its context before timing anything */
    for (int s = 0; s < n_runs; s++) {
        timed *r = &runs[s];
        const char *plus = strchr(r->spec, '+');
        size_t len = plus ? (size_t)(plus - r->spec) : strlen(r->spec);
        const char *tag = plus ? plus + 1 : "";
        if (len >= sizeof r->sampler) {
            fprintf(stderr, "sampler '%s' is too long\n", r->spec);
            return 2;
        }
        memcpy(r->sampler, r->spec, len);
        r->sampler[len] = 0;
        for (int k = 0; k < n_refs && !r->rc; k++)
            if (!strcmp(refs[k].tag, tag)) r->rc = &refs[k];
        char err[256];
        if (!r->rc) {
            fprintf(stderr, "%s: no --refiner-as %s=FILE\n", r->spec, tag);
            return 2;
        }
        if (ft_sampler_describe(r->sampler, &r->info, err, sizeof err) != FT_OK) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        if (!r->rc->ctx && !(r->rc->ctx = open_context(backend, threads, model, r->rc->path))) return 1;
    }
    ft_output_shape shape;
    ft_get_output_shape(runs[0].rc->ctx, &shape);
    size_t per = (size_t)shape.latent_channels * shape.latent_size * shape.latent_size;
    float *out = malloc(per * (size_t)n * sizeof(float));
    int *labels = malloc((size_t)n * sizeof(int));
    if (!out || !labels) return 1;
    for (int k = 0; k < n; k++) labels[k] = k % 10;
    for (int s = 0; s < n_runs; s++) { /* warm-up: plans built, caches and pages touched */
        timed *r = &runs[s];
        ft_generate_params_init(&r->gp);
        r->gp.labels = labels;
        r->gp.seed = 0;
        r->gp.sampler = r->sampler;
        r->gp.cfg_scale = cfg;
        r->gp.batch_size = batch;
        r->gp.num_images = batch < n ? batch : n;
        if (ft_generate(r->rc->ctx, &r->gp, out, NULL) != FT_OK) {
            fprintf(stderr, "%s: %s\n", r->spec, ft_last_error(r->rc->ctx));
            return 1;
        }
        r->gp.num_images = n;
    }
    for (int rep = 0; rep < reps; rep++)
        for (int s = 0; s < n_runs; s++) {
            timed *r = &runs[s];
            double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            if (ft_generate(r->rc->ctx, &r->gp, out, NULL) != FT_OK) {
                fprintf(stderr, "%s: %s\n", r->spec, ft_last_error(r->rc->ctx));
                return 1;
            }
            r->ms[rep] = (clock_s(CLOCK_MONOTONIC) - t0) * 1e3 / n;
            r->cpu_ms[rep] = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3 / n;
        }
    for (int s = 0; s < n_runs; s++) {
        timed *r = &runs[s];
        qsort(r->ms, (size_t)reps, sizeof r->ms[0], cmp_double);
        qsort(r->cpu_ms, (size_t)reps, sizeof r->cpu_ms[0], cmp_double);
        printf("{\"sampler\": \"%s\", \"name\": \"%s\", \"refiner\": \"%s\", \"predictor_calls\": %d, "
               "\"refiner_blocks\": %d, \"ms_per_img_median\": %.4f, \"ms_per_img_min\": %.4f, "
               "\"ms_per_img_max\": %.4f, \"cpu_ms_per_img_median\": %.4f, \"reps\": %d, \"n\": %d, \"batch\": %d, \"threads\": %d, "
               "\"cfg_scale\": %g, \"backend\": \"%s\", \"interleaved\": true}\n",
               r->spec, r->info.name, r->rc->tag, r->info.predictor_calls, r->info.refiner_blocks, r->ms[reps / 2],
               r->ms[0], r->ms[reps - 1], r->cpu_ms[reps / 2], reps, n, batch, threads, cfg, ft_backend_name(r->rc->ctx));
    }
    fflush(stdout);
    free(out);
    free(labels);
    for (int k = 0; k < n_refs; k++) ft_context_free(refs[k].ctx);
    return 0;
}
