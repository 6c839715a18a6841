/*
 * bench/cpu_bench.c — CPU timings of the engine on a model file:
 *   - one predictor forward (conditioning + token path) on 2B rows (guidance batch),
 *   - one refiner forward,
 *   - a whole sample (noise -> final latents) for each sampler given,
 * each as the median of --repeat runs after --warmup runs, same thread count
 * as the PyTorch reference (bench/cpu_torch.py). Prints one JSON object per
 * line: {"what":..., "ms":..., ...}, after a first {"what":"cpu", ...} line naming the SIMD path and the BLAS.
 *
 *   build/cpu_bench -m sit.safetensors [-r refiner.safetensors] [-t 2] [-b 1]
 *                   [--sampler H1P5R3 ...] [--repeat 5] [--warmup 1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/flowturbo.h"
#include "bench_stats.h"
#include "../engine/sit.h"
#include "../kernels/cpu/cpu_simd.h"

/* Median ms of one forward of model `path` (role) over N rows. */
static double time_forward(const char *path, ft_role role, int threads, int N, int warmup, int repeat) {
    char e[256];
    ft_err err;
    ft_backend *be = ft_backend_cpu_create(threads, e, sizeof e);
    st_file f;
    sit_model m;
    if (!be || st_open(&f, path, &err) != FT_OK || sit_load(be, &f, role, &m, NULL, NULL, &err) != FT_OK) {
        fprintf(stderr, "cpu_bench: %s\n", be ? err.msg : e);
        exit(1);
    }
    const sit_config *c = &m.cfg;
    sit_scratch s;
    sit_cond_scratch cs;
    void *scratch = NULL;
    if (sit_scratch_alloc(be, c, N, N, &s, &cs, &scratch) != FT_OK) exit(1);
    size_t state = (size_t)c->in_channels * c->input_size * c->input_size;
    float *x = malloc(N * state * 4), *v = malloc(N * state * 4), *out = malloc(N * state * 4);
    float *t = malloc(N * 4), *mod = malloc((size_t)N * c->mod_width * 4);
    int32_t *labels = malloc(N * sizeof *labels);
    ft_noise(x, N, c->in_channels, c->input_size, 1);
    ft_noise(v, N, c->in_channels, c->input_size, 2);
    for (int i = 0; i < N; i++) t[i] = 0.5f, labels[i] = i % c->num_classes;
    double *ms = malloc((size_t)repeat * sizeof *ms);
    for (int r = -warmup; r < repeat; r++) {
        double t0 = bench_now_ms();
        sit_condition(be, &m, &cs, t, labels, N, mod);
        sit_forward(be, &m, &s, x, N, c->is_refiner ? v : NULL, mod, N, out);
        if (r >= 0) ms[r] = bench_now_ms() - t0;
    }
    double med = bench_median(ms, repeat);
    free(ms), free(x), free(v), free(out), free(t), free(mod), free(labels);
    be->free(be, scratch);
    sit_free(be, &m);
    st_close(&f);
    be->destroy(be);
    return med;
}

int main(int argc, char **argv) {
    const char *model = NULL, *refiner = NULL, *samplers[16];
    int n_samplers = 0, threads = 2, batch = 1, repeat = 5, warmup = 1;
    float cfg = 4.0f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) { fprintf(stderr, "cpu_bench: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "-m")) model = val;
        else if (!strcmp(a, "-r")) refiner = val;
        else if (!strcmp(a, "-t")) threads = atoi(val);
        else if (!strcmp(a, "-b")) batch = atoi(val);
        else if (!strcmp(a, "--cfg-scale")) cfg = strtof(val, NULL);
        else if (!strcmp(a, "--repeat")) repeat = atoi(val);
        else if (!strcmp(a, "--warmup")) warmup = atoi(val);
        else if (!strcmp(a, "--sampler") && n_samplers < 16) samplers[n_samplers++] = val;
        else { fprintf(stderr, "cpu_bench: unknown option %s\n", a); return 2; }
        i++;
    }
    if (!model || threads < 1 || batch < 1 || repeat < 1 || warmup < 0) {
        fprintf(stderr, "usage: cpu_bench -m MODEL [-r REFINER] [-t THREADS] [-b BATCH] [--sampler S]... "
                        "[--repeat N] [--warmup N]\n");
        return 2;
    }
    int rows = cfg > 1.0f ? 2 * batch : batch;
    char why[256], blas[256];
    cpu_simd_reason(why, sizeof why);
    cpu_blas_describe(blas, sizeof blas);
    printf("{\"what\":\"cpu\",\"simd\":\"%s\",\"features\":\"%s\",\"conv\":\"%s\",\"linear\":\"%s\",\"blas\":\"%s\"}\n",
           cpu_simd_path(), why, cpu_conv_path(), cpu_linear_path(), blas);
    printf("{\"what\":\"predictor_forward\",\"rows\":%d,\"threads\":%d,\"ms\":%.3f}\n", rows, threads,
           time_forward(model, FT_ROLE_PREDICTOR, threads, rows, warmup, repeat));
    if (refiner)
        printf("{\"what\":\"refiner_forward\",\"rows\":%d,\"threads\":%d,\"ms\":%.3f}\n", rows, threads,
               time_forward(refiner, FT_ROLE_REFINER, threads, rows, warmup, repeat));
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = threads;
    ft_context *ctx = ft_context_new(&cp);
    if (ft_load(ctx, FT_ROLE_PREDICTOR, model) != FT_OK || (refiner && ft_load(ctx, FT_ROLE_REFINER, refiner) != FT_OK)) {
        fprintf(stderr, "cpu_bench: %s\n", ft_last_error(ctx));
        return 1;
    }
    ft_output_shape shape;
    ft_get_output_shape(ctx, &shape);
    float *lat = malloc((size_t)batch * shape.latent_channels * shape.latent_size * shape.latent_size * 4);
    int *labels = malloc((size_t)batch * sizeof *labels);
    for (int i = 0; i < batch; i++) labels[i] = i;
    double *ms = malloc((size_t)repeat * sizeof *ms);
    for (int k = 0; k < n_samplers; k++) {
        ft_generate_params gp;
        ft_generate_params_init(&gp);
        gp.num_images = batch, gp.labels = labels, gp.sampler = samplers[k], gp.cfg_scale = cfg, gp.batch_size = batch;
        for (int r = -warmup; r < repeat; r++) {
            gp.seed = (uint64_t)(r + 10);
            double t0 = bench_now_ms();
            if (ft_generate(ctx, &gp, lat, NULL) != FT_OK) {
                fprintf(stderr, "cpu_bench: %s\n", ft_last_error(ctx));
                return 1;
            }
            if (r >= 0) ms[r] = bench_now_ms() - t0;
        }
        printf("{\"what\":\"sample\",\"sampler\":\"%s\",\"batch\":%d,\"cfg\":%g,\"threads\":%d,\"ms\":%.3f}\n",
               samplers[k], batch, cfg, threads, bench_median(ms, repeat));
    }
    free(ms), free(lat), free(labels);
    ft_context_free(ctx);
    return 0;
}
