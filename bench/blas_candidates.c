/*
 * bench/blas_candidates.c — single-threaded SGEMM rate of one BLAS library at the CPU engine's shapes.
 *
 * The CPU backend calls the BLAS single-threaded from its own OpenMP pool (kernels/cpu/gemm.c: a tile grid
 * that depends only on the shape, one sgemm per tile), so what a BLAS contributes is its one-thread rate at
 * those tile shapes. This loads a library by path (dlopen: the candidates share their soname), forces it to
 * one thread, and times cblas_sgemm row-major at the SiT-S/2 forward's linear shapes (x W^T, as cpu_linear
 * calls it, per tile of the engine's grid for 2 and 16 rows) and at the attention's score / P V shapes.
 * Prints one JSON line per shape: {"lib":..., "shape":..., "m":..,"n":..,"k":..,"gflops":..}; median of
 * --repeat timed runs after one warm-up, each run repeating the call until it has taken >= 20 ms.
 *
 *   build/blas_candidates LIB.so [--repeat 7]      (bench/blas_candidates.sh runs every candidate)
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *name;
    int tb, m, n, k;
    int ld_qkv; /* attention: q, k, v rows are read from the packed qkv buffer (row stride 3 x 384) */
} shape;

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s LIB.so [--repeat N]\n", argv[0]);
        return 2;
    }
    int repeat = 7;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--repeat") == 0) repeat = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (repeat < 1 || repeat > 1000) {
        fprintf(stderr, "--repeat must be 1..1000\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    sgemm_fn sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!sgemm) {
        fprintf(stderr, "%s has no cblas_sgemm\n", argv[1]);
        return 1;
    }
    /* one thread, whichever API the library has */
    void (*set_ob)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    void (*set_blis)(long) = (void (*)(long))dlsym(h, "bli_thread_set_num_threads");
    if (set_ob) set_ob(1);
    if (set_blis) set_blis(1);
    char *(*ob_config)(void) = (char *(*)(void))dlsym(h, "openblas_get_config");
    const char *what = ob_config ? ob_config() : set_blis ? "BLIS" : "?";

    /* S/2: hidden 384, MLP 1536, 256 tokens per row, 6 heads of 64. Linear tiles as kernels/cpu/gemm.c cuts
     * them (tile_grid: 2 rows = M 512, 16 rows = M 4096). */
    static const shape shapes[] = {
        {"qkv 2 rows (tile)", 1, 512, 576, 384, 0},    {"proj 2 rows (tile)", 1, 256, 384, 384, 0},
        {"fc1 2 rows (tile)", 1, 512, 768, 384, 0},    {"fc2 2 rows (tile)", 1, 256, 384, 1536, 0},
        {"qkv 16 rows (tile)", 1, 586, 576, 384, 0},   {"proj 16 rows (tile)", 1, 1024, 384, 384, 0},
        {"fc1 16 rows (tile)", 1, 683, 512, 384, 0},   {"fc2 16 rows (tile)", 1, 256, 384, 1536, 0},
        {"scores q k^T (64 queries)", 1, 64, 256, 64, 1}, {"P V (64 queries)", 0, 64, 64, 256, 1},
        {"scores q k^T (256 queries)", 1, 256, 256, 64, 1}, {"P V (256 queries)", 0, 256, 64, 256, 1},
    };
    size_t cap = (size_t)1 << 22; /* floats per operand: enough for every shape above */
    float *A = malloc(cap * 4), *B = malloc(cap * 4), *C = malloc(cap * 4);
    if (!A || !B || !C) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    srand(1);
    for (size_t i = 0; i < cap; i++) {
        A[i] = (float)rand() / RAND_MAX - 0.5f;
        B[i] = (float)rand() / RAND_MAX - 0.5f;
    }
    double *runs = malloc(sizeof(double) * (size_t)repeat);
    if (!runs) return 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *p = &shapes[s];
        int lda = p->k, ldb = p->tb ? p->k : p->n, ldc = p->n;
        if (p->ld_qkv) {
            ldb = 3 * 384;
            if (p->tb) lda = 3 * 384; /* scores: q and k both in qkv; P V: P is its own [m, 256] block */
        }
        double flop = 2.0 * p->m * p->n * p->k;
        int reps = 1;
        for (int r = -1; r < repeat; r++) { /* r = -1: warm-up, which also sizes reps */
            double t0 = now_s();
            for (int i = 0; i < reps; i++)
                sgemm(ROW_MAJOR, NO_TRANS, p->tb ? TRANS : NO_TRANS, p->m, p->n, p->k, 1.0f, A, lda, B, ldb, 0.0f, C,
                      ldc);
            double dt = now_s() - t0;
            if (r < 0) {
                reps = (int)(0.02 / (dt > 1e-7 ? dt : 1e-7)) + 1;
                continue;
            }
            runs[r] = flop * reps / dt / 1e9;
        }
        qsort(runs, (size_t)repeat, sizeof *runs, cmp_double);
        printf("{\"lib\":\"%s\",\"config\":\"%s\",\"shape\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,\"gflops\":%.1f}\n",
               argv[1], what, p->name, p->m, p->n, p->k, runs[repeat / 2]);
    }
    free(runs), free(A), free(B), free(C);
    return 0;
}
