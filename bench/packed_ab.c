/*
 * bench/packed_ab.c — A/B of the CPU backend's own micro-kernel paths (linear layers on weights packed at load,
 * kernels/cpu/linear_packed.c; attention, kernels/cpu/attention.c) against OpenBLAS (what FT_CPU_LINEAR=blas
 * gives), both in one process, alternating call by call, so that a change in machine load hits both sides alike.
 * Reports the minimum and the median of each side.
 *
 *   build/packed_ab -m sit.safetensors [-t threads] [-n rows] [-r rounds]   one predictor forward (rows = 2B)
 *   build/packed_ab --linear M N K [-t threads] [-r rounds]                 one linear y[M,N] = x[M,K] W[N,K]^T
 *   build/packed_ab --attention N T H HD [-t threads] [-r rounds]           one attention over qkv[N,T,3 H HD]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../engine/sit.h"
#include "../kernels/backend.h"
#include "bench_stats.h"

typedef struct {
    ft_backend *be;
    st_file f;
    sit_model m;
    sit_scratch s;
    sit_cond_scratch cs;
    void *scratch;
    void *w; /* --linear: the weight */
} side;

static ft_backend *backend(int threads) {
    char e[256];
    ft_backend *be = ft_backend_cpu_create(threads, e, sizeof e);
    if (!be) {
        fprintf(stderr, "packed_ab: %s\n", e);
        exit(1);
    }
    return be;
}

/* Loads the model with FT_CPU_LINEAR set to `mode` (read when the weights are uploaded). */
static void load_model(side *d, const char *path, const char *mode, int threads, int rows) {
    ft_err err;
    setenv("FT_CPU_LINEAR", mode, 1);
    d->be = backend(threads);
    if (st_open(&d->f, path, &err) != FT_OK ||
        sit_load(d->be, &d->f, FT_ROLE_PREDICTOR, &d->m, NULL, NULL, &err) != FT_OK) {
        fprintf(stderr, "packed_ab: %s\n", err.msg);
        exit(1);
    }
    if (sit_scratch_alloc(d->be, &d->m.cfg, rows, rows, &d->s, &d->cs, &d->scratch) != FT_OK) exit(1);
}

static void report(const char *what, double *a, double *b, int rounds) {
    double min_a = a[0], min_b = b[0];
    for (int r = 1; r < rounds; r++) min_a = a[r] < min_a ? a[r] : min_a, min_b = b[r] < min_b ? b[r] : min_b;
    double med_b = bench_median(b, rounds), med_a = bench_median(a, rounds);
    printf("%s: own min %.3f ms, median %.3f | OpenBLAS min %.3f ms, median %.3f | OpenBLAS / own (min) %.3f\n", what, min_a, med_a, min_b, med_b, min_b / min_a);
}

int main(int argc, char **argv) {
    const char *model = NULL;
    int threads = 1, rows = 2, rounds = 16, lin[3] = {0, 0, 0}, att[4] = {0, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--linear") && i + 3 < argc)
            for (int k = 0; k < 3; k++) lin[k] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--attention") && i + 4 < argc)
            for (int k = 0; k < 4; k++) att[k] = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: packed_ab -m MODEL [-t T] [-n ROWS] [-r ROUNDS] | --linear M N K [-t T] [-r R] | "
                            "--attention N T H HD [-t T] [-r R]\n");
            return 2;
        }
    }
    if (att[0]) { /* one attention: the path is chosen per call (FT_CPU_LINEAR) */
        int N = att[0], T = att[1], H = att[2], hd = att[3];
        if (N < 1 || T < 1 || H < 1 || hd < 1 || rounds < 1 || rounds > 1000) return fprintf(stderr, "packed_ab: bad sizes\n"), 2;
        ft_backend *be = backend(threads);
        size_t n_qkv = (size_t)N * T * 3 * H * hd, n_o = (size_t)N * T * H * hd;
        float *qkv = malloc(n_qkv * 4), *oa = malloc(n_o * 4), *ob = malloc(n_o * 4);
        double *ta = malloc(rounds * sizeof *ta), *tb = malloc(rounds * sizeof *tb);
        if (!qkv || !oa || !ob || !ta || !tb) return 1;
        ft_noise(qkv, 1, (int)n_qkv, 1, 3);
        for (int r = -1; r < rounds; r++) {
            setenv("FT_CPU_LINEAR", "own", 1);
            double t0 = bench_now_ms();
            be->attention(be, oa, qkv, N, T, H, hd);
            double t1 = bench_now_ms();
            setenv("FT_CPU_LINEAR", "blas", 1);
            be->attention(be, ob, qkv, N, T, H, hd);
            double t2 = bench_now_ms();
            if (r >= 0) ta[r] = t1 - t0, tb[r] = t2 - t1;
        }
        double num = 0, den = 0;
        for (size_t i = 0; i < n_o; i++) num += (oa[i] - (double)ob[i]) * (oa[i] - ob[i]), den += (double)ob[i] * ob[i];
        char what[128];
        snprintf(what, sizeof what, "attention N %d T %d H %d hd %d, %d threads (%.2f GFLOP, rel L2 %.2g)", N, T, H, hd,
                 threads, 4e-9 * N * H * T * T * hd, den > 0 ? sqrt(num / den) : 0.0);
        report(what, ta, tb, rounds);
        return 0;
    }
    if ((!model && !lin[0]) || rounds < 1 || rounds > 1000 || rows < 1 || threads < 1) {
        fprintf(stderr, "packed_ab: -m MODEL or --linear M N K needed; rounds 1..1000\n");
        return 2;
    }
    double *ta = malloc(rounds * sizeof *ta), *tb = malloc(rounds * sizeof *tb);
    if (lin[0]) { /* one linear */
        int M = lin[0], N = lin[1], K = lin[2];
        ft_backend *be = backend(threads);
        float *x = malloc((size_t)M * K * 4), *w = malloc((size_t)N * K * 4), *y = malloc((size_t)M * N * 4);
        void *wa = NULL, *wb = NULL;
        if (!x || !w || !y || be->alloc(be, (size_t)N * K * 4, &wa) != FT_OK ||
            be->alloc(be, (size_t)N * K * 4, &wb) != FT_OK)
            return 1;
        ft_noise(x, 1, M * K, 1, 1);
        ft_noise(w, 1, N * K, 1, 2);
        setenv("FT_CPU_LINEAR", "own", 1);
        be->upload_linear_weight(be, wa, w, FT_DTYPE_F32, N, K);
        setenv("FT_CPU_LINEAR", "blas", 1);
        be->upload_linear_weight(be, wb, w, FT_DTYPE_F32, N, K);
        for (int r = -1; r < rounds; r++) {
            double t0 = bench_now_ms();
            be->linear(be, y, FT_BUF_F32, x, wa, NULL, M, N, K, FT_EPI_NONE);
            double t1 = bench_now_ms();
            be->linear(be, y, FT_BUF_F32, x, wb, NULL, M, N, K, FT_EPI_NONE);
            double t2 = bench_now_ms();
            if (r >= 0) ta[r] = t1 - t0, tb[r] = t2 - t1;
        }
        char what[96];
        snprintf(what, sizeof what, "linear M %d N %d K %d, %d threads (%.1f GFLOP)", M, N, K, threads,
                 2e-9 * M * N * K);
        report(what, ta, tb, rounds);
        return 0;
    }
    side a, b;
    load_model(&a, model, "own", threads, rows);
    load_model(&b, model, "blas", threads, rows);
    const sit_config *c = &a.m.cfg;
    size_t state = (size_t)c->in_channels * c->input_size * c->input_size;
    float *x = malloc(rows * state * 4), *ya = malloc(rows * state * 4), *yb = malloc(rows * state * 4);
    float *t = malloc(rows * 4), *mod = malloc((size_t)rows * c->mod_width * 4);
    int32_t *labels = malloc(rows * sizeof *labels);
    if (!x || !ya || !yb || !t || !mod || !labels) return 1;
    ft_noise(x, rows, c->in_channels, c->input_size, 1);
    for (int i = 0; i < rows; i++) t[i] = 0.5f, labels[i] = i % c->num_classes;
    for (int r = -1; r < rounds; r++)
        for (int k = 0; k < 2; k++) { /* the order alternates round by round */
            side *d = (k == 0) == (r % 2 == 0) ? &a : &b;
            setenv("FT_CPU_LINEAR", d == &a ? "own" : "blas", 1); /* the attention's path is chosen per call */
            double t0 = bench_now_ms();
            sit_condition(d->be, &d->m, &d->cs, t, labels, rows, mod);
            sit_forward(d->be, &d->m, &d->s, x, rows, NULL, mod, rows, d == &a ? ya : yb);
            if (r >= 0) (d == &a ? ta : tb)[r] = bench_now_ms() - t0;
        }
    double num = 0, den = 0;
    for (size_t i = 0; i < rows * state; i++) num += (ya[i] - (double)yb[i]) * (ya[i] - yb[i]), den += (double)yb[i] * yb[i];
    char what[96];
    snprintf(what, sizeof what, "predictor forward, %d rows, %d threads (outputs differ by rel L2 %.2g)", rows, threads,
             den > 0 ? sqrt(num / den) : 0.0);
    report(what, ta, tb, rounds);
    return 0;
}
