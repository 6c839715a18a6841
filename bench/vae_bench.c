/* bench/vae_bench.c — times the VAE decoder (vae_decode on the CPU backend).
 *
 *   vae_bench -m VAE.safetensors [-t threads] [-n images] [-s latent_side] [-w warmup] [-r repeats]
 *             [-o out.f32] [-p]
 *
 * Latents are standard normal (fixed seed, ft_noise). Scratch and output are
 * allocated once; each repeat is one vae_decode + sync. Prints every repeat
 * and the median in ms per image; -o writes the decoded floats of the last
 * repeat ([n, C, S, S] raw float32); -p adds a per-op time profile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/vae.h"
#include "../kernels/cpu/cpu_simd.h"
#include "bench_stats.h"

/* CPU time of the process (all threads): on a shared machine, cpu / threads
 * shows what the decode costs when it is not waiting for a core. */
static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* ---- optional per-op profile: the backend table is wrapped ---- */

enum { P_CONV3, P_CONV3_UP, P_CONV1, P_GN, P_LINEAR, P_ATTN, P_ELEM, P_N };
static const char *p_name[P_N] = {"conv 3x3", "conv 3x3 up2x", "conv 1x1", "group_norm", "linear", "attention",
                                  "elementwise"};
static double p_ms[P_N], p_gmac[P_N];
static int p_calls[P_N];
static ft_backend orig;

#define TIMED(slot, gmac, call)        \
    do {                               \
        double t0_ = bench_now_ms();         \
        call;                          \
        p_ms[slot] += bench_now_ms() - t0_;  \
        p_gmac[slot] += (gmac);        \
        p_calls[slot]++;               \
    } while (0)

static void w_conv2d(ft_backend *be, float *y, const float *x, const void *w, const float *bias, int N, int Cin,
                     int S, int Cout, int k, int pad, int up2x) {
    int so = (up2x ? 2 * S : S) + 2 * pad - k + 1;
    double gmac = (double)N * Cout * Cin * k * k * so * so / 1e9;
    int slot = k == 1 ? P_CONV1 : up2x ? P_CONV3_UP : P_CONV3;
    TIMED(slot, gmac, orig.conv2d(be, y, x, w, bias, N, Cin, S, Cout, k, pad, up2x));
}
static void w_group_norm(ft_backend *be, float *y, const float *x, const float *g, const float *b, int N, int C,
                         int HW, int groups, float eps, int silu) {
    TIMED(P_GN, 0, orig.group_norm(be, y, x, g, b, N, C, HW, groups, eps, silu));
}
static void w_linear(ft_backend *be, void *y, ft_buf_type yt, const void *x, const void *w, const float *bias, int M,
                     int N, int K, ft_epilogue epi) {
    TIMED(P_LINEAR, (double)M * N * K / 1e9, orig.linear(be, y, yt, x, w, bias, M, N, K, epi));
}
static void w_attention(ft_backend *be, void *o, const void *qkv, int N, int T, int H, int hd) {
    TIMED(P_ATTN, 2.0 * N * H * T * (double)T * hd / 1e9, orig.attention(be, o, qkv, N, T, H, hd));
}
static void w_add(ft_backend *be, float *y, const float *a, const float *b, size_t n) {
    TIMED(P_ELEM, 0, orig.add(be, y, a, b, n));
}
static void w_scale(ft_backend *be, float *y, const float *x, float s, size_t n) {
    TIMED(P_ELEM, 0, orig.scale(be, y, x, s, n));
}
static void w_transpose(ft_backend *be, float *y, const float *x, int batch, int C, int R) {
    TIMED(P_ELEM, 0, orig.transpose(be, y, x, batch, C, R));
}
static void w_cast(ft_backend *be, void *d, ft_buf_type dt, const void *s, ft_buf_type st, size_t n) {
    TIMED(P_ELEM, 0, orig.cast(be, d, dt, s, st, n));
}

static void wrap(ft_backend *be) {
    orig = *be;
    be->conv2d = w_conv2d;
    be->group_norm = w_group_norm;
    be->linear = w_linear;
    be->attention = w_attention;
    be->add = w_add;
    be->scale = w_scale;
    be->transpose = w_transpose;
    be->cast = w_cast;
}

static void usage(void) {
    fprintf(stderr, "usage: vae_bench -m VAE.safetensors [-t threads] [-n images] [-s latent_side] [-w warmup] "
                    "[-r repeats] [-o out.f32] [-p]\n");
}

int main(int argc, char **argv) {
    const char *model = NULL, *out_path = NULL;
    int threads = 0, n = 1, s = 32, warmup = 1, reps = 5, profile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-p")) { profile = 1; continue; }
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "-n")) n = atoi(v);
        else if (!strcmp(a, "-s")) s = atoi(v);
        else if (!strcmp(a, "-w")) warmup = atoi(v);
        else if (!strcmp(a, "-r")) reps = atoi(v);
        else if (!strcmp(a, "-o")) out_path = v;
        else { usage(); return 2; }
        i++;
    }
    if (!model || n < 1 || s < 1 || reps < 1 || warmup < 0) { usage(); return 2; }
    char e[256];
    ft_backend *be = ft_backend_cpu_create(threads, e, sizeof e);
    if (!be) { fprintf(stderr, "cpu backend: %s\n", e); return 1; }
    st_file f;
    ft_err err;
    vae_model *m = NULL;
    if (st_open(&f, model, &err) != FT_OK || vae_load(be, &f, &m, NULL, NULL, &err) != FT_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    st_close(&f);
    const vae_config *c = vae_get_config(m);
    int S = vae_image_size(m, s);
    size_t nlat = (size_t)n * c->latent_channels * s * s, nimg = (size_t)n * c->out_channels * S * S;
    size_t scratch_bytes = vae_scratch_bytes(be, m, n, s);
    float *lat = NULL, *img = NULL;
    void *scratch = NULL;
    if (be->alloc(be, nlat * 4, (void **)&lat) || be->alloc(be, nimg * 4, (void **)&img) ||
        be->alloc(be, scratch_bytes, &scratch)) {
        fprintf(stderr, "%s\n", be->error);
        return 1;
    }
    ft_noise(lat, n, c->latent_channels, s, 1234);
    printf("vae_bench: %s, %zu params, blocks", model, vae_n_params(m));
    for (int i = 0; i < c->n_blocks; i++) printf("%s%d", i ? "," : " ", c->block_out_channels[i]);
    printf(", %d layers/block, latent %dx%dx%d -> %dx%dx%d, batch %d, threads %d, scratch %.1f MiB\n",
           c->layers_per_block, c->latent_channels, s, s, c->out_channels, S, S, n, threads, scratch_bytes / 1048576.0);
    char why[256], blas[256];
    cpu_simd_reason(why, sizeof why);
    cpu_blas_describe(blas, sizeof blas);
    printf("cpu simd: %s (%s); conv: %s; linear: %s; blas: %s\n", cpu_simd_path(), why, cpu_conv_path(),
           cpu_linear_path(), blas);
    for (int i = 0; i < warmup; i++) vae_decode(be, m, scratch, lat, n, s, img);
    if (be->sync(be) != FT_OK) { fprintf(stderr, "decode failed: %s\n", be->error); return 1; }
    if (profile) wrap(be);
    double *ms = malloc(sizeof(double) * reps), *cms = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms(), c0 = cpu_ms();
        vae_decode(be, m, scratch, lat, n, s, img);
        be->sync(be);
        ms[r] = (bench_now_ms() - t0) / n;
        cms[r] = (cpu_ms() - c0) / n;
        printf("  repeat %d: %.1f ms/img (cpu %.1f ms/img)\n", r, ms[r], cms[r]);
        fflush(stdout);
    }
    if (be->sync(be) != FT_OK) { fprintf(stderr, "decode failed: %s\n", be->error); return 1; }
    qsort(ms, reps, sizeof *ms, bench_cmp_double);
    qsort(cms, reps, sizeof *cms, bench_cmp_double);
    double med = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    double cmed = reps % 2 ? cms[reps / 2] : 0.5 * (cms[reps / 2 - 1] + cms[reps / 2]);
    printf("median %.1f ms/img (min %.1f, max %.1f) over %d repeats; cpu median %.1f ms/img\n", med, ms[0],
           ms[reps - 1], reps, cmed);
    if (profile) {
        double total = 0;
        for (int i = 0; i < P_N; i++) total += p_ms[i];
        printf("profile (per image, mean over repeats):\n");
        for (int i = 0; i < P_N; i++) {
            if (!p_calls[i]) continue;
            double t = p_ms[i] / reps / n;
            printf("  %-14s %4d calls %9.1f ms %5.1f%%", p_name[i], p_calls[i] / reps, t, 100 * p_ms[i] / total);
            if (p_gmac[i] > 0) printf("  %7.1f GFLOP/s", 2 * p_gmac[i] / (p_ms[i] / 1e3));
            printf("\n");
        }
    }
    if (out_path) {
        FILE *o = fopen(out_path, "wb");
        if (!o || fwrite(img, 4, nimg, o) != nimg || fclose(o)) {
            fprintf(stderr, "cannot write %s\n", out_path);
            return 1;
        }
    }
    free(ms);
    free(cms);
    be->free(be, lat);
    be->free(be, img);
    be->free(be, scratch);
    vae_free(be, m);
    be->destroy(be);
    return 0;
}
