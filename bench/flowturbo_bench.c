/*
 * bench/flowturbo_bench.c — build/flowturbo-bench: the GPU benchmark.
 *
 * On randomly initialised full-size models written in process
 * (bench/ft_random_model.h: SiT-XL/2 675 M, the 1-block refiner, the SD-VAE
 * decoder; bf16 files, every layer non-zero) it measures, in one run:
 *   1. the cuBLASLt GEMM rate (through the backend's linear op, captured in a
 *      graph) at the model's own shapes: M = 2 B 256 for each batch B,
 *      (N, K) = (3456, 1152) qkv, (1152, 1152) proj, (4608, 1152) fc1 + GELU,
 *      (1152, 4608) fc2; plus the hoisted adaLN GEMM of a trajectory;
 *   2. one network call (2B rows: CFG) of the predictor, the refiner, and a
 *      VAE decode of B latents, each captured in a graph: ms and TFLOP/s;
 *   3. whole samples through the public API (ft_generate; plan cache, inputs,
 *      noise, latents download included) for each sampler and batch, with
 *      and without CUDA graphs, and with the VAE decode: ms per batch,
 *      ms/img, img/s;
 * with the GPU's name, clocks, memory, peak memory use and the commit (the
 * one it was built from, FT_BUILD_COMMIT, unless --commit / FT_COMMIT say
 * otherwise). Every row names the backend that measured it; a backend
 * without CUDA graphs (the CPU) gets eager rows only, and the VAE (whose
 * FLOPs are not counted) has no TFLOP/s column. Every number is the median
 * of --reps runs after --warmup runs. Output: a markdown table on stdout
 * (and --md FILE) and JSON (--json FILE). `--help` lists the flags.
 *
 * --budget stops starting new measurements once that many seconds have
 * passed (what is done is still reported). --preset tiny runs a small model
 * (a smoke test of the benchmark itself, e.g. on the CPU backend).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef FT_WITH_CUDA
#include <cuda_runtime.h>
#endif

#include "../engine/flowturbo.h"
#include "bench_stats.h"
#include "../engine/sampler.h"
#include "../engine/sit.h"
#include "../engine/vae.h"
#include "../kernels/backend.h"
#include "../kernels/cpu/cpu_simd.h"
#include "ft_random_model.h"
#include "../host/fid_lanes.h"
#include "../host/fid_npz.h"
#include "../host/fid_spool.h"

#define MAX_LIST 16
#define MAX_ROWS 512

/* ---- options ---- */

typedef struct {
    int batches[MAX_LIST], n_batches;
    char samplers[MAX_LIST][32];
    int n_samplers;
    int reps, warmup;
    int tiny, vae, eager, fid, fid_batches;
    ft_backend_kind backend;
    ft_dtype dtype;
    char weights_dir[512], json[512], md[512], commit[64];
    double budget;
} options;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double g_t0;
static int over_budget(const options *o) { return o->budget > 0 && now_s() - g_t0 > o->budget; }

static int parse_ints(const char *s, int *out) {
    int n = 0;
    while (*s && n < MAX_LIST) {
        out[n++] = atoi(s);
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    return n;
}

static int parse_words(const char *s, char out[][32]) {
    int n = 0;
    while (*s && n < MAX_LIST) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len >= 32) len = 31;
        memcpy(out[n], s, len);
        out[n++][len] = 0;
        if (!e) break;
        s = e + 1;
    }
    return n;
}

/* ---- results ---- */

typedef struct {
    char what[48];
    int M, N, K;
    double ms, tflops;
} gemm_res;

typedef struct {
    char model[16];
    int batch, rows;
    double ms, ms_img, tflops;
} net_res;

typedef struct {
    char sampler[32];
    int batch, graphs, decode;
    double ms_batch, ms_img, img_s;
} sample_res;

static gemm_res g_gemm[64];
static int g_n_gemm;
static net_res g_net[32];
static int g_n_net;
static sample_res g_smp[256];
static int g_n_smp;
static double g_min_free = -1, g_total_mem;
static const char *g_backend = "?"; /* the backend that measured every row */
static int g_graphs;                 /* it captures CUDA graphs */

static void note_memory(void) {
#ifdef FT_WITH_CUDA
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) == cudaSuccess) {
        if (g_min_free < 0 || (double)f < g_min_free) g_min_free = (double)f;
        g_total_mem = (double)t;
    } else {
        cudaGetLastError();
    }
#endif
}

/* ---- timing of enqueued work ---- */

typedef void (*emit_fn)(void *user);

/* ms per emit(): `inner` calls per timed unit, in a graph when the backend
 * has graphs; median of reps after warmup. */
static double time_emit(ft_backend *be, emit_fn emit, void *user, int inner, const options *o) {
    void *graph = NULL;
    if (be->begin_capture) {
        if (be->begin_capture(be) != FT_OK) return -1;
        for (int i = 0; i < inner; i++) emit(user);
        if (be->end_capture(be, &graph) != FT_OK) return -1;
    }
    double v[64];
    int reps = o->reps > 64 ? 64 : o->reps;
    for (int r = -o->warmup; r < reps; r++) {
        double t0 = now_s();
        if (graph) be->replay(be, graph);
        else
            for (int i = 0; i < inner; i++) emit(user);
        if (be->sync(be) != FT_OK) {
            if (graph) be->graph_free(be, graph);
            return -1;
        }
        if (r >= 0) v[r] = (now_s() - t0) * 1e3 / inner;
    }
    if (graph) be->graph_free(be, graph);
    note_memory();
    return bench_median(v, reps);
}

/* ---- 1. GEMM rate ---- */

#define GEMM_COPIES 8

typedef struct {
    ft_backend *be;
    void *x, *w[GEMM_COPIES], *y;
    float *b;
    int M, N, K, copies, next;
    ft_epilogue epi;
} gemm_job;

/* Each call uses the next weight copy: the copies together exceed the L2, so
 * the weights stream from memory as they do in the network. */
static void emit_gemm(void *u) {
    gemm_job *j = u;
    void *w = j->w[j->next];
    j->next = (j->next + 1) % j->copies;
    j->be->linear(j->be, j->y, FT_BUF_ACT, j->x, w, j->b, j->M, j->N, j->K, j->epi);
}

static float *host_random(size_t n, double scale, uint64_t seed) {
    float *h = malloc(n * sizeof(float));
    if (!h) return NULL;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) h[i] = (float)(scale * rm_normal(seed, (uint64_t)i));
    return h;
}

/* Device buffer of n act values (or f32 when f32), random. */
static void *dev_random(ft_backend *be, size_t n, double scale, uint64_t seed, int f32) {
    float *h = host_random(n, scale, seed);
    void *d = NULL;
    size_t bytes = f32 ? n * 4 : be->weight_size(be, FT_WEIGHT_MATRIX, n);
    if (!h || be->alloc(be, bytes, &d) != FT_OK) {
        free(h);
        return NULL;
    }
    ft_status st = be->upload_weight(be, d, h, FT_DTYPE_F32, n, f32 ? FT_WEIGHT_VECTOR : FT_WEIGHT_MATRIX);
    free(h);
    if (st != FT_OK) {
        be->free(be, d);
        return NULL;
    }
    return d;
}

static void bench_gemm(ft_backend *be, const char *what, int M, int N, int K, ft_epilogue epi, const options *o) {
    if (over_budget(o) || g_n_gemm >= 64) return;
    gemm_job j;
    memset(&j, 0, sizeof j);
    j.be = be, j.M = M, j.N = N, j.K = K, j.epi = epi;
    size_t wbytes = (size_t)N * K * be->act_size;
    j.copies = (int)((160u << 20) / (wbytes ? wbytes : 1)) + 1; /* >= 160 MiB of weights in rotation */
    if (j.copies > GEMM_COPIES) j.copies = GEMM_COPIES;
    int ok = 1;
    j.x = dev_random(be, (size_t)M * K, 1.0, 1, 0);
    for (int c = 0; c < j.copies; c++) ok &= (j.w[c] = dev_random(be, (size_t)N * K, 1.0 / sqrt(K), 2 + c, 0)) != NULL;
    j.b = dev_random(be, (size_t)N, 0.1, 99, 1);
    be->alloc(be, (size_t)M * N * be->act_size, &j.y);
    double ms = -1;
    if (ok && j.x && j.b && j.y) {
        int inner = j.copies;
        double flop = 2.0 * M * N * K;
        while (inner < 64 && flop * inner < 2e12) inner += j.copies; /* >= ~2 ms of work per timed unit */
        ms = time_emit(be, emit_gemm, &j, inner, o);
    }
    if (ms > 0) {
        gemm_res *r = &g_gemm[g_n_gemm++];
        snprintf(r->what, sizeof r->what, "%s", what);
        r->M = M, r->N = N, r->K = K, r->ms = ms, r->tflops = 2.0 * M * N * K / (ms * 1e-3) / 1e12;
        fprintf(stderr, "  gemm %-10s M=%-6d N=%-6d K=%-5d %8.3f ms %7.1f TFLOP/s\n", what, M, N, K, ms, r->tflops);
    } else {
        fprintf(stderr, "  gemm %s M=%d N=%d K=%d failed: %s\n", what, M, N, K, be->error);
        be->error[0] = 0;
    }
    be->free(be, j.x), be->free(be, j.b), be->free(be, j.y);
    for (int c = 0; c < j.copies; c++) be->free(be, j.w[c]);
}

/* ---- 2. network calls ---- */

typedef struct {
    ft_backend *be;
    sit_model m;
    st_file f;
    int loaded;
    sit_scratch s;
    sit_cond_scratch cs;
    float *x, *v, *t, *mod, *out;
    int32_t *labels;
    int N, x_batch;
    void *bufs[32];
    int n_bufs, failed;
} net_job;

static void *nalloc(net_job *j, size_t bytes) {
    void *p = NULL;
    if (j->n_bufs < 32 && j->be->alloc(j->be, bytes ? bytes : 16, &p) == FT_OK) j->bufs[j->n_bufs++] = p;
    else j->failed = 1;
    return p;
}

static void emit_net(void *u) {
    net_job *j = u;
    sit_forward(j->be, &j->m, &j->s, j->x, j->x_batch, j->v, j->mod, j->N, j->out);
}

static void net_free(net_job *j) {
    for (int i = 0; i < j->n_bufs; i++) j->be->free(j->be, j->bufs[i]);
    if (j->loaded) sit_free(j->be, &j->m);
    if (j->f.base) st_close(&j->f);
    memset(j, 0, sizeof *j);
}

/* FLOP of one forward over N rows (every GEMM, attention, patch embed). */
static double sit_flop(const sit_config *c, int N) {
    double T = c->tokens, D = c->hidden, F = c->mlp_hidden, rows = (double)N * T;
    double per_block = 2 * rows * D * (3 * D + D + 2 * F) + 4.0 * N * T * T * D;
    return c->depth * per_block + 2 * rows * D * c->final_out + 2 * rows * D * c->embed_channels * c->patch * c->patch;
}

static void bench_net(ft_backend *be, const char *path, ft_role role, int B, const options *o) {
    if (over_budget(o) || g_n_net >= 32) return;
    net_job j;
    memset(&j, 0, sizeof j);
    j.be = be;
    ft_err err;
    if (st_open(&j.f, path, &err) != FT_OK || sit_load(be, &j.f, role, &j.m, NULL, NULL, &err) != FT_OK) {
        fprintf(stderr, "  %s: %s\n", path, err.msg);
        net_free(&j);
        return;
    }
    j.loaded = 1;
    const sit_config *c = &j.m.cfg;
    int N = 2 * B;
    j.N = N;
    j.x_batch = B;
    size_t tok, h, qkv, fc1, fo, freq, hid, A = be->act_size;
    sit_forward_sizes(c, N, &tok, &h, &qkv, &fc1, &fo);
    sit_cond_sizes(c, N, &freq, &hid);
    size_t state = (size_t)c->in_channels * c->input_size * c->input_size;
    j.s.tokens = nalloc(&j, tok * 4), j.s.h = nalloc(&j, h * A), j.s.qkv = nalloc(&j, qkv * A);
    j.s.attn = nalloc(&j, h * A), j.s.a = nalloc(&j, h * A), j.s.fc1 = nalloc(&j, fc1 * A), j.s.fo = nalloc(&j, fo * A);
    j.cs.freq = nalloc(&j, freq * 4), j.cs.temb = nalloc(&j, hid * 4), j.cs.freq_act = nalloc(&j, freq * A);
    j.cs.t_hidden = nalloc(&j, hid * A), j.cs.c_act = nalloc(&j, hid * A);
    j.x = nalloc(&j, B * state * 4), j.v = c->is_refiner ? nalloc(&j, N * state * 4) : NULL;
    j.t = nalloc(&j, N * 4), j.mod = nalloc(&j, (size_t)N * c->mod_width * 4), j.out = nalloc(&j, N * state * 4);
    j.labels = nalloc(&j, N * 4);
    int ok = !j.failed;
    if (ok) {
        float *hx = host_random(N * state, 1.0, 7), *ht = malloc(N * 4);
        int32_t *hl = malloc(N * 4);
        for (int i = 0; i < N && ht && hl; i++) ht[i] = 0.3f, hl[i] = i < B ? i % c->num_classes : c->num_classes;
        ok = hx && ht && hl && be->upload(be, j.x, hx, B * state * 4) == FT_OK &&
             (!j.v || be->upload(be, j.v, hx, N * state * 4) == FT_OK) && be->upload(be, j.t, ht, N * 4) == FT_OK &&
             be->upload(be, j.labels, hl, N * 4) == FT_OK;
        free(hx), free(ht), free(hl);
        if (ok) sit_condition(be, &j.m, &j.cs, j.t, j.labels, N, j.mod);
    }
    double ms = ok ? time_emit(be, emit_net, &j, 3, o) : -1;
    if (ms > 0) {
        net_res *r = &g_net[g_n_net++];
        snprintf(r->model, sizeof r->model, "%s", role == FT_ROLE_REFINER ? "refiner" : "predictor");
        r->batch = B, r->rows = N, r->ms = ms, r->ms_img = ms / B;
        r->tflops = sit_flop(c, N) / (ms * 1e-3) / 1e12;
        fprintf(stderr, "  %-9s batch %-3d (%d rows): %8.3f ms/call %7.3f ms/img %7.1f TFLOP/s\n", r->model, B, N, ms,
                r->ms_img, r->tflops);
    } else {
        fprintf(stderr, "  %s batch %d failed: %s\n", path, B, be->error);
        be->error[0] = 0;
    }
    net_free(&j);
}

typedef struct {
    ft_backend *be;
    vae_model *m;
    void *scratch;
    float *lat, *img;
    int B, S;
    uint8_t *rgb; /* emit_vae_rgb: [B, IS, IS, 3] */
    int channels, image_size;
} vae_job;

static void emit_vae(void *u) {
    vae_job *j = u;
    vae_decode(j->be, j->m, j->scratch, j->lat, j->B, j->S, j->img);
}

/* The decode part of the pipeline graph: latents -> uint8 RGB on the device. */
static void emit_vae_rgb(void *u) {
    vae_job *j = u;
    emit_vae(u);
    j->be->to_rgb8(j->be, j->rgb, j->img, j->B, j->channels, j->image_size);
}

static void bench_vae(ft_backend *be, const char *path, int B, const options *o) {
    if (over_budget(o) || g_n_net >= 32) return;
    st_file f;
    ft_err err;
    vae_job j = {be, NULL, NULL, NULL, NULL, B, o->tiny ? 16 : 32, NULL, 0, 0};
    if (st_open(&f, path, &err) != FT_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    if (vae_load(be, &f, &j.m, NULL, NULL, &err) != FT_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        st_close(&f);
        return;
    }
    const vae_config *c = vae_get_config(j.m);
    int IS = vae_image_size(j.m, j.S);
    size_t lat = (size_t)B * c->latent_channels * j.S * j.S;
    j.lat = dev_random(be, lat, 1.0, 9, 1);
    be->alloc(be, vae_scratch_bytes(be, j.m, B, j.S), &j.scratch);
    be->alloc(be, (size_t)B * c->out_channels * IS * IS * 4, (void **)&j.img);
    double ms = j.lat && j.scratch && j.img ? time_emit(be, emit_vae, &j, 1, o) : -1;
    if (ms > 0) {
        net_res *r = &g_net[g_n_net++];
        snprintf(r->model, sizeof r->model, "vae");
        r->batch = B, r->rows = B, r->ms = ms, r->ms_img = ms / B, r->tflops = 0;
        fprintf(stderr, "  vae       batch %-3d: %8.3f ms/decode %7.3f ms/img\n", B, ms, r->ms_img);
    } else {
        fprintf(stderr, "  vae batch %d failed: %s\n", B, be->error);
        be->error[0] = 0;
    }
    be->free(be, j.lat), be->free(be, j.scratch), be->free(be, j.img);
    vae_free(be, j.m);
    st_close(&f);
}

/* ---- 3. whole samples (public API) ---- */

static ft_context *open_context(const options *o, int graphs, const char *pred, const char *ref, const char *vae) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = o->backend;
    cp.compute_dtype = o->dtype;
    cp.use_graphs = graphs;
    ft_context *ctx = ft_context_new(&cp);
    if (!ctx) return NULL;
    if (ft_load(ctx, FT_ROLE_PREDICTOR, pred) != FT_OK || ft_load(ctx, FT_ROLE_REFINER, ref) != FT_OK ||
        (vae && ft_load(ctx, FT_ROLE_VAE, vae) != FT_OK)) {
        fprintf(stderr, "loading models: %s\n", ft_last_error(ctx));
        ft_context_free(ctx);
        return NULL;
    }
    return ctx;
}

static void bench_sample(ft_context *ctx, const char *sampler, int B, int graphs, int decode, const options *o) {
    if (over_budget(o) || g_n_smp >= 256) return;
    ft_output_shape sh;
    ft_get_output_shape(ctx, &sh);
    size_t lat = (size_t)B * sh.latent_channels * sh.latent_size * sh.latent_size;
    size_t img = (size_t)B * sh.image_size * sh.image_size * 3;
    float *l = malloc(lat * 4);
    uint8_t *im = decode ? malloc(img) : NULL;
    int *labels = malloc((size_t)B * sizeof(int));
    for (int i = 0; i < B && labels; i++) labels[i] = (i * 37) % 1000 % (o->tiny ? 10 : 1000);
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = B;
    gp.batch_size = B;
    gp.labels = labels;
    gp.sampler = sampler;
    gp.cfg_scale = 1.5f; /* the paper's FID setting: guided, 2B rows per call */
    double v[64];
    int reps = o->reps > 64 ? 64 : o->reps, ok = l && labels && (!decode || im);
    for (int r = -o->warmup; ok && r < reps; r++) {
        gp.seed = 1000 + (uint64_t)(r + o->warmup) * B;
        double t0 = now_s();
        ok = ft_generate(ctx, &gp, l, im) == FT_OK;
        if (r >= 0) v[r] = (now_s() - t0) * 1e3;
    }
    note_memory();
    if (ok) {
        sample_res *s = &g_smp[g_n_smp++];
        snprintf(s->sampler, sizeof s->sampler, "%s", sampler);
        s->batch = B, s->graphs = graphs, s->decode = decode;
        s->ms_batch = bench_median(v, reps);
        s->ms_img = s->ms_batch / B;
        s->img_s = 1e3 / s->ms_img;
        fprintf(stderr, "  %-8s batch %-3d %-6s %-8s %9.2f ms/batch %8.3f ms/img %8.1f img/s\n", sampler, B,
                graphs ? "graph" : "eager", decode ? "+decode" : "latents", s->ms_batch, s->ms_img, s->img_s);
    } else {
        fprintf(stderr, "  %s batch %d %s failed: %s\n", sampler, B, graphs ? "graph" : "eager", ft_last_error(ctx));
    }
    free(l), free(im), free(labels);
}

/* ---- 4. the FID pipeline: noise -> uint8 images in host memory (sample-fid's path) ---- */

typedef struct {
    char sampler[32];
    int batch, lanes, batches;
    double img_s, img_s_npz;             /* end to end; with sample-fid's spool + npz writer in the loop */
    double sample_ms, decode_ms, copy_ms; /* per batch, each measured alone (median) */
    double peak_mib;                      /* device memory in use (GPU) / peak RSS of the process (CPU) */
} fid_res;

static fid_res g_fid[64];
static int g_n_fid;

static double peak_rss_mib(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : -1;
}

/* One FID run: batches k = 0.. of B images (labels k*B+i mod classes, seeds from 5000), taken in order; with a
 * spool, each batch is appended (fsync'd, as sample-fid does) and the npz is assembled at the end. */
typedef struct {
    const char *sampler;
    int B, classes, labels[1024];
    fid_spool *spool;
    hx_err err;
} fid_run;

static int fid_make(void *user, int64_t k, ft_generate_params *gp) {
    fid_run *r = user;
    for (int i = 0; i < r->B; i++) r->labels[i] = (int)((k * r->B + i) * 37 % r->classes);
    ft_generate_params_init(gp);
    gp->num_images = gp->batch_size = r->B;
    gp->labels = r->labels;
    gp->seed = 5000 + (uint64_t)k * r->B;
    gp->sampler = r->sampler;
    gp->cfg_scale = 1.5f;
    return 0;
}

static int fid_take(void *user, int64_t k, const uint8_t *images, int n) {
    fid_run *r = user;
    (void)k;
    return r->spool ? fid_spool_append(r->spool, images, (size_t)n, &r->err) : 0;
}

static int spool_read(void *user, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    return fid_spool_read(((fid_run *)user)->spool, first, n, buf, err);
}

static int run_labels(void *user, uint64_t first, size_t n, int64_t *out, hx_err *err) {
    (void)err;
    for (size_t i = 0; i < n; i++) out[i] = (int64_t)((first + i) * 37 % (uint64_t)((fid_run *)user)->classes);
    return 0;
}

/* Seconds for n_batches batches through lanes (device backends: double-buffered, as sample-fid) or through
 * ft_generate on the caller's thread (lanes NULL: the CPU, as sample-fid); with npz, into a spool and an npz
 * under dir that are deleted afterwards. -1 on failure. */
static double fid_timed(ft_context *ctx, fid_lanes *lanes, fid_run *r, int n_batches, int S, const char *dir, int npz) {
    size_t image_bytes = (size_t)S * S * 3;
    char spool_dir[700], npz_path[700], path[800];
    snprintf(spool_dir, sizeof spool_dir, "%s/spool", dir);
    snprintf(npz_path, sizeof npz_path, "%s/samples.npz", dir);
    fid_spool sp;
    memset(&sp, 0, sizeof sp);
    sp.fd = sp.lock_fd = -1;
    uint64_t total = (uint64_t)n_batches * r->B;
    uint8_t *images = lanes ? NULL : ft_host_alloc(ctx, image_bytes * r->B);
    double t = -1;
    r->spool = NULL;
    if (!lanes && !images) goto out;
    if (npz && fid_spool_open(&sp, spool_dir, "flowturbo-bench\n", total, image_bytes, &r->err) != 0) goto out;
    r->spool = npz ? &sp : NULL;
    double t0 = now_s();
    int rc = 0;
    if (lanes) {
        rc = fid_lanes_run(lanes, n_batches, fid_make, fid_take, r, &r->err);
    } else {
        for (int k = 0; k < n_batches && rc == 0; k++) {
            ft_generate_params gp;
            fid_make(r, k, &gp);
            if (ft_generate(ctx, &gp, NULL, images) != FT_OK) rc = hx_fail(&r->err, "%s", ft_last_error(ctx));
            else rc = fid_take(r, k, images, r->B);
        }
    }
    if (rc == 0 && npz) rc = fid_write_npz(npz_path, total, S, spool_read, run_labels, r, 0, &r->err);
    if (rc == 0) t = now_s() - t0;
    if (npz && rc == 0) fid_spool_finish(&sp, &r->err);
out:
    fid_spool_close(&sp);
    if (npz) {
        remove(npz_path);
        const char *names[] = {"state", "images.raw", "lock"};
        for (int i = 0; i < 3; i++) snprintf(path, sizeof path, "%s/%s", spool_dir, names[i]), remove(path);
        rmdir(spool_dir);
    }
    ft_host_free(ctx, images);
    return t;
}

/* The parts of a batch measured alone on a backend of its own: the VAE decode to uint8 (vae_decode + to_rgb8,
 * in a graph where the backend has graphs) and the device-to-host copy of the uint8 images into host memory
 * from host_alloc (pinned on CUDA). */
static void fid_parts(const char *vae_path, int B, const options *o, double *decode_ms, double *copy_ms) {
    *decode_ms = *copy_ms = -1;
    char err[512];
    ft_backend *be = ft_backend_create(o->backend, 0, 0, o->dtype, err, sizeof err);
    if (!be) return;
    st_file f;
    ft_err e;
    vae_job j = {be, NULL, NULL, NULL, NULL, B, o->tiny ? 16 : 32, NULL, 0, 0};
    if (st_open(&f, vae_path, &e) == FT_OK) {
        if (vae_load(be, &f, &j.m, NULL, NULL, &e) == FT_OK) {
            const vae_config *c = vae_get_config(j.m);
            int IS = vae_image_size(j.m, j.S);
            size_t rgb = (size_t)B * IS * IS * 3;
            j.lat = dev_random(be, (size_t)B * c->latent_channels * j.S * j.S, 1.0, 9, 1);
            be->alloc(be, vae_scratch_bytes(be, j.m, B, j.S), &j.scratch);
            be->alloc(be, (size_t)B * c->out_channels * IS * IS * 4, (void **)&j.img);
            be->alloc(be, rgb, (void **)&j.rgb);
            j.channels = c->out_channels, j.image_size = IS;
            if (j.lat && j.scratch && j.img && j.rgb) *decode_ms = time_emit(be, emit_vae_rgb, &j, 1, o);
            void *host = be->host_alloc ? be->host_alloc(be, rgb) : malloc(rgb);
            double v[64];
            int reps = o->reps > 64 ? 64 : o->reps, ok = host && j.rgb;
            for (int r = -o->warmup; ok && r < reps; r++) {
                be->sync(be);
                double t0 = now_s();
                ok = be->download(be, host, j.rgb, rgb) == FT_OK;
                if (r >= 0) v[r] = (now_s() - t0) * 1e3;
            }
            if (ok) *copy_ms = bench_median(v, reps);
            if (be->host_free) be->host_free(be, host);
            else free(host);
            be->free(be, j.lat), be->free(be, j.scratch), be->free(be, j.img), be->free(be, j.rgb);
            vae_free(be, j.m);
        }
        st_close(&f);
    }
    be->destroy(be);
}

static void bench_fid(ft_context *ctx, const char *vae_path, const char *sampler, int B, const options *o) {
    if (over_budget(o) || g_n_fid >= 64 || B > 1024) return;
    ft_output_shape sh;
    ft_model_info mi;
    if (ft_get_output_shape(ctx, &sh) != FT_OK || ft_model_get_info(ctx, FT_ROLE_PREDICTOR, &mi) != FT_OK) return;
    fid_res *res = &g_fid[g_n_fid];
    memset(res, 0, sizeof *res);
    snprintf(res->sampler, sizeof res->sampler, "%s", sampler);
    res->batch = B;
    res->lanes = g_graphs ? FID_MAX_LANES : 0; /* the CPU runs sample-fid's in-thread path */
    res->batches = o->fid_batches;
    /* sampling alone: the trajectory (graph), latents out, no decode */
    size_t lat = (size_t)B * sh.latent_channels * sh.latent_size * sh.latent_size;
    float *l = malloc(lat * 4);
    fid_run *r = calloc(1, sizeof *r);
    if (!l || !r) {
        free(l), free(r);
        return;
    }
    r->sampler = sampler, r->B = B, r->classes = mi.num_classes;
    double v[64];
    int reps = o->reps > 64 ? 64 : o->reps, ok = 1;
    for (int k = -o->warmup - 1; ok && k < reps; k++) { /* one more warm-up: the graph is captured on run 2 */
        ft_generate_params gp;
        fid_make(r, k + o->warmup + 1, &gp);
        double t0 = now_s();
        ok = ft_generate(ctx, &gp, l, NULL) == FT_OK;
        if (k >= 0) v[k] = (now_s() - t0) * 1e3;
    }
    res->sample_ms = ok ? bench_median(v, reps) : -1;
    free(l);
    fid_parts(vae_path, B, o, &res->decode_ms, &res->copy_ms);
    /* end to end, then with the writer; warm-up: two batches per lane (each lane captures its graph on its
     * second batch) */
    fid_lanes lanes, *lp = NULL;
    char dir[600];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/flowturbo-bench-fid-%d", tmp ? tmp : "/tmp", (int)getpid());
    mkdir(dir, 0755);
    if (res->lanes) {
        ft_context_params cp;
        ft_context_params_init(&cp);
        if (fid_lanes_open(&lanes, ctx, &cp, res->lanes, B, (size_t)sh.image_size * sh.image_size * 3, &r->err) == 0)
            lp = &lanes;
        else
            ok = 0;
    }
    double warm = ok ? fid_timed(ctx, lp, r, 2 * (res->lanes ? res->lanes : 1), sh.image_size, dir, 0) : -1;
    double t = warm >= 0 ? fid_timed(ctx, lp, r, o->fid_batches, sh.image_size, dir, 0) : -1;
    double tn = t >= 0 ? fid_timed(ctx, lp, r, o->fid_batches, sh.image_size, dir, 1) : -1;
    note_memory();
    if (lp) fid_lanes_close(lp);
    rmdir(dir);
    res->img_s = t > 0 ? (double)o->fid_batches * B / t : -1;
    res->img_s_npz = tn > 0 ? (double)o->fid_batches * B / tn : -1;
    res->peak_mib = g_graphs ? (g_min_free >= 0 ? (g_total_mem - g_min_free) / 1048576.0 : -1) : peak_rss_mib();
    if (res->img_s > 0) {
        g_n_fid++;
        fprintf(stderr, "  %-8s batch %-3d %s: %8.1f img/s, %8.1f img/s with the npz writer (sample %.2f, decode %.2f, "
                        "copy %.3f ms/batch)\n", sampler, B, res->lanes ? "2 lanes" : "in order", res->img_s,
                res->img_s_npz, res->sample_ms, res->decode_ms, res->copy_ms);
    } else {
        fprintf(stderr, "  fid %s batch %d failed: %s\n", sampler, B, r->err.msg[0] ? r->err.msg : ft_last_error(ctx));
    }
    free(r);
}

/* ---- output ---- */

static int is_vae(const net_res *r) { return strcmp(r->model, "vae") == 0; }

/* "model name" of /proc/cpuinfo and the cores online, for the CPU rows. */
static const char *cpu_name(void) {
    static char name[160];
    if (name[0]) return name;
    char line[256], model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    snprintf(name, sizeof name, "CPU: %s, %ld cores", model, sysconf(_SC_NPROCESSORS_ONLN));
    return name;
}

/* The machine in one line for the markdown header: the card with its clocks and driver, or the CPU. */
static void device_line(char *out, size_t cap, const options *o) {
    snprintf(out, cap, "%s", o->backend == FT_BACKEND_CPU ? cpu_name() : "GPU: unknown");
#ifdef FT_WITH_CUDA
    int clk = 0, mclk = 0, drv = 0, rt = 0;
    struct cudaDeviceProp p;
    if (o->backend != FT_BACKEND_CPU && cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
        cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0);
        cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, 0);
        cudaDriverGetVersion(&drv);
        cudaRuntimeGetVersion(&rt);
        snprintf(out, cap, "GPU: %s, %d SMs, max SM clock %d MHz, memory clock %d MHz, %.0f MiB, driver (CUDA) %d.%d, "
                 "runtime %d.%d", p.name, p.multiProcessorCount, clk / 1000, mclk / 1000, p.totalGlobalMem / 1048576.0,
                 drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    }
    cudaGetLastError();
#endif
}

static void device_json(FILE *f, const options *o) {
    fprintf(f, "  \"device\": {");
#ifdef FT_WITH_CUDA
    int dev = 0, clk = 0, mclk = 0, drv = 0, rt = 0;
    struct cudaDeviceProp p;
    if (o->backend != FT_BACKEND_CPU && cudaGetDeviceProperties(&p, dev) == cudaSuccess) {
        cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev);
        cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, dev);
        cudaDriverGetVersion(&drv);
        cudaRuntimeGetVersion(&rt);
        fprintf(f,
                "\"name\": \"%s\", \"cc\": \"%d.%d\", \"sms\": %d, \"max_sm_clock_mhz\": %d, \"max_mem_clock_mhz\": "
                "%d, \"memory_mib\": %.0f, \"l2_mib\": %.1f, \"driver\": %d, \"runtime\": %d",
                p.name, p.major, p.minor, p.multiProcessorCount, clk / 1000, mclk / 1000, p.totalGlobalMem / 1048576.0,
                p.l2CacheSize / 1048576.0, drv, rt);
        cudaGetLastError();
    } else
#endif
        fprintf(f, "\"name\": \"%s\"", o->backend == FT_BACKEND_CPU ? cpu_name() : "unknown");
    if (o->backend == FT_BACKEND_CPU) {
        char why[256], blas[256];
        cpu_simd_reason(why, sizeof why);
        cpu_blas_describe(blas, sizeof blas);
        fprintf(f, ", \"simd\": \"%s\", \"features\": \"%s\", \"blas\": \"%s\"", cpu_simd_path(), why, blas);
    }
    fprintf(f, "},\n");
}

static void write_json(const options *o, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        return;
    }
    fprintf(f, "{\n  \"tool\": \"flowturbo-bench\",\n  \"impl\": \"flowturbo\",\n  \"commit\": \"%s\",\n"
               "  \"backend\": \"%s\",\n  \"graphs\": %s,\n", o->commit, g_backend, g_graphs ? "true" : "false");
    device_json(f, o);
    fprintf(f, "  \"config\": {\"preset\": \"%s\", \"dtype\": \"%s\", \"reps\": %d, \"warmup\": %d, \"cfg_scale\": 1.5},\n",
            o->tiny ? "tiny" : "SiT-XL/2 + refiner + SD-VAE",
            o->backend == FT_BACKEND_CPU ? "f32" : o->dtype == FT_DTYPE_F16 ? "f16" : "bf16", o->reps, o->warmup);
    double peak = g_min_free >= 0 ? (g_total_mem - g_min_free) / 1048576.0 : -1;
    fprintf(f, "  \"peak_device_mib\": %.0f,\n  \"gemm\": [", peak);
    for (int i = 0; i < g_n_gemm; i++)
        fprintf(f, "%s\n    {\"what\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"ms\": %.5f, \"tflops\": %.4g}",
                i ? "," : "", g_gemm[i].what, g_gemm[i].M, g_gemm[i].N, g_gemm[i].K, g_gemm[i].ms, g_gemm[i].tflops);
    fprintf(f, "\n  ],\n  \"network\": [");
    for (int i = 0; i < g_n_net; i++) {
        fprintf(f, "%s\n    {\"model\": \"%s\", \"batch\": %d, \"rows\": %d, \"ms\": %.5f, \"ms_per_img\": %.5f",
                i ? "," : "", g_net[i].model, g_net[i].batch, g_net[i].rows, g_net[i].ms, g_net[i].ms_img);
        if (!is_vae(&g_net[i])) fprintf(f, ", \"tflops\": %.4g", g_net[i].tflops); /* VAE FLOPs are not counted */
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"samples\": [");
    for (int i = 0; i < g_n_smp; i++)
        fprintf(f,
                "%s\n    {\"sampler\": \"%s\", \"batch\": %d, \"graphs\": %s, \"decode\": %s, \"ms_per_batch\": "
                "%.4f, \"ms_per_img\": %.4f, \"img_per_s\": %.2f}",
                i ? "," : "", g_smp[i].sampler, g_smp[i].batch, g_smp[i].graphs ? "true" : "false",
                g_smp[i].decode ? "true" : "false", g_smp[i].ms_batch, g_smp[i].ms_img, g_smp[i].img_s);
    fprintf(f, "\n  ],\n  \"fid_pipeline\": [");
    for (int i = 0; i < g_n_fid; i++)
        fprintf(f,
                "%s\n    {\"sampler\": \"%s\", \"backend\": \"%s\", \"batch\": %d, \"lanes\": %d, \"batches\": %d, "
                "\"img_per_s\": %.3f, \"img_per_s_npz\": %.3f, \"sample_ms_per_batch\": %.4f, "
                "\"decode_ms_per_batch\": %.4f, \"copy_ms_per_batch\": %.4f, \"%s\": %.0f}",
                i ? "," : "", g_fid[i].sampler, g_backend, g_fid[i].batch, g_fid[i].lanes, g_fid[i].batches,
                g_fid[i].img_s, g_fid[i].img_s_npz, g_fid[i].sample_ms, g_fid[i].decode_ms, g_fid[i].copy_ms,
                g_graphs ? "peak_device_mib" : "peak_rss_mib", g_fid[i].peak_mib);
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
}

static void write_md(FILE *f, const options *o) {
    char dev[400];
    device_line(dev, sizeof dev, o);
    fprintf(f, "## flowturbo-bench (commit %s, %s backend, %s, median of %d after %d warm-up)\n\n%s\n\n", o->commit,
            g_backend, o->backend == FT_BACKEND_CPU ? "f32" : o->dtype == FT_DTYPE_F16 ? "fp16" : "bf16", o->reps,
            o->warmup, dev);
    if (o->backend == FT_BACKEND_CPU) {
        char blas[256];
        cpu_blas_describe(blas, sizeof blas);
        fprintf(f, "CPU SIMD path: %s; BLAS: %s\n\n", cpu_simd_path(), blas);
    }
    if (g_n_gemm) fprintf(f, "| GEMM | backend | M | N | K | ms | TFLOP/s |\n|---|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < g_n_gemm; i++)
        fprintf(f, "| %s | %s | %d | %d | %d | %.4f | %.3g |\n", g_gemm[i].what, g_backend, g_gemm[i].M, g_gemm[i].N,
                g_gemm[i].K, g_gemm[i].ms, g_gemm[i].tflops);
    int n_vae = 0;
    for (int i = 0; i < g_n_net; i++) n_vae += is_vae(&g_net[i]);
    if (g_n_net > n_vae)
        fprintf(f, "\n| network call (CFG: 2B rows%s) | backend | batch | ms/call | ms/img | TFLOP/s |\n"
                   "|---|---|---:|---:|---:|---:|\n", g_graphs ? ", graph replay" : "");
    for (int i = 0; i < g_n_net; i++)
        if (!is_vae(&g_net[i]))
            fprintf(f, "| %s | %s | %d | %.3f | %.3f | %.3g |\n", g_net[i].model, g_backend, g_net[i].batch, g_net[i].ms,
                    g_net[i].ms_img, g_net[i].tflops);
    if (n_vae) fprintf(f, "\n| VAE decode | backend | batch | ms/decode | ms/img |\n|---|---|---:|---:|---:|\n");
    for (int i = 0; i < g_n_net; i++)
        if (is_vae(&g_net[i]))
            fprintf(f, "| vae | %s | %d | %.3f | %.3f |\n", g_backend, g_net[i].batch, g_net[i].ms, g_net[i].ms_img);
    if (g_n_smp)
        fprintf(f, "\n| sampler | backend | batch | mode | output | ms/batch | ms/img | img/s |\n"
                   "|---|---|---:|---|---|---:|---:|---:|\n");
    for (int i = 0; i < g_n_smp; i++)
        fprintf(f, "| %s | %s | %d | %s | %s | %.2f | %.3f | %.1f |\n", g_smp[i].sampler, g_backend, g_smp[i].batch,
                g_smp[i].graphs ? "graph" : "eager", g_smp[i].decode ? "+VAE" : "latents", g_smp[i].ms_batch,
                g_smp[i].ms_img, g_smp[i].img_s);
    if (g_n_fid) {
        fprintf(f, "\n| FID pipeline: sampler | backend | batch | path | img/s (noise -> uint8 in host memory) | "
                   "img/s with the npz writer | sampling ms/batch | decode ms/batch | copy ms/batch | %s |\n"
                   "|---|---|---:|---|---:|---:|---:|---:|---:|---:|\n", g_graphs ? "device MiB in use" : "peak RSS MiB");
        for (int i = 0; i < g_n_fid; i++)
            fprintf(f, "| %s | %s | %d | %s | %.1f | %.1f | %.2f | %.2f | %.3f | %.0f |\n", g_fid[i].sampler,
                    g_backend, g_fid[i].batch, g_fid[i].lanes ? "graph, 2 lanes" : "in order", g_fid[i].img_s,
                    g_fid[i].img_s_npz, g_fid[i].sample_ms, g_fid[i].decode_ms, g_fid[i].copy_ms, g_fid[i].peak_mib);
    }
    if (g_min_free >= 0) fprintf(f, "\npeak device memory in use: %.0f MiB\n", (g_total_mem - g_min_free) / 1048576.0);
}

/* Writes --md / --json with what is measured so far (a killed run keeps it). */
static void flush_outputs(const options *o) {
    if (o->md[0]) {
        FILE *f = fopen(o->md, "w");
        if (f) write_md(f, o), fclose(f);
    }
    if (o->json[0]) write_json(o, o->json);
}

/* ---- main ---- */

static int ensure_models(const options *o, char *pred, char *ref, char *vae, size_t n) {
    mkdir(o->weights_dir, 0755);
    snprintf(pred, n, "%s/%s-pred.safetensors", o->weights_dir, o->tiny ? "tiny" : "xl2");
    snprintf(ref, n, "%s/%s-ref.safetensors", o->weights_dir, o->tiny ? "tiny" : "xl2");
    snprintf(vae, n, "%s/%s-vae.safetensors", o->weights_dir, o->tiny ? "tiny" : "sd");
    rm_sit_cfg p = rm_sit_xl2(0), r = rm_sit_xl2(1);
    rm_vae_cfg v = rm_sd_vae();
    if (o->tiny) {
        rm_sit_cfg tp = {0, 16, 4, 2, 144, 2, 2, 10, 1, 3, 4.0};
        rm_vae_cfg tv = {4, 3, 1, 8, 2, {16, 32}, 0.18215};
        p = tp, r = tp, r.refiner = 1, r.depth = 1, v = tv;
    }
    char err[256];
    struct stat st;
    double t0 = now_s();
    /* files are deterministic in (config, seed): reuse what exists */
    if (stat(pred, &st) != 0 && !rm_write_sit(pred, &p, 1, 1, err, sizeof err)) goto fail;
    if (stat(ref, &st) != 0 && !rm_write_sit(ref, &r, 2, 1, err, sizeof err)) goto fail;
    if (o->vae && stat(vae, &st) != 0 && !rm_write_vae(vae, &v, 3, 1, err, sizeof err)) goto fail;
    fprintf(stderr, "random models ready in %s (%.1f s)\n", o->weights_dir, now_s() - t0);
    return 1;
fail:
    fprintf(stderr, "cannot write random models: %s\n", err);
    return 0;
}

#ifndef FT_BUILD_COMMIT
#define FT_BUILD_COMMIT "unknown"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "Usage: flowturbo-bench [options]\n"
            "\n"
            "GEMM rates, network calls and whole samples of SiT-XL/2 + refiner + SD-VAE with random weights\n"
            "(median of --reps after --warmup); markdown on stdout, optional --md / --json files.\n"
            "Section 4, the FID pipeline, per sampler and batch (cfg 1.5): images/s from noise to uint8 images in\n"
            "host memory through sample-fid's path (CUDA: 2 double-buffered lanes, one graph launch and one copy\n"
            "into pinned memory a batch; CPU: one batch after the other), over --fid-batches batches after two\n"
            "warm-up batches a lane; the same with sample-fid's spool and npz writer in the loop (a temporary npz\n"
            "under $TMPDIR, deleted); and the parts of a batch measured alone (medians): sampling (the trajectory,\n"
            "no decode), the VAE decode to uint8, the device-to-host copy; device memory in use (GPU) or the\n"
            "process's peak RSS (CPU). The header names the card, its clocks and driver, or the CPU.\n"
            "\n"
            "Options:\n"
            "  --batches LIST      batch sizes (default 1,8,64)\n"
            "  --samplers LIST     samplers (default heun:8,H1P5R3,H2P4R2,H8P9R5)\n"
            "  --reps N            timed runs per measurement, median reported (default 5)\n"
            "  --warmup N          untimed runs first (default 1)\n"
            "  --preset xl|tiny    model size: SiT-XL/2 (default) or a tiny smoke-test model\n"
            "  --backend cuda|cpu  backend that measures (default cuda)\n"
            "  --dtype bf16|f16    GPU GEMM operand type of the transformers (default bf16; the VAE runs f16;\n"
            "                      the CPU computes in f32)\n"
            "  --weights-dir DIR   where the random model files are written/reused (default $TMPDIR/flowturbo-bench)\n"
            "  --no-vae            skip the VAE (decode and +VAE sample rows, and section 4)\n"
            "  --no-eager          skip the eager (no graph) sample rows on a backend with graphs\n"
            "  --no-fid            skip section 4, the FID pipeline\n"
            "  --fid-batches N     batches per timed FID-pipeline run (default 8)\n"
            "  --only-fid          run section 4 only (skip the GEMM, network-call and sample sections)\n"
            "  --budget SECONDS    start no new measurement after this long (what is done is reported)\n"
            "  --json FILE         also write the results as JSON\n"
            "  --md FILE           also write the markdown tables to FILE\n"
            "  --commit SHA        commit to record (default: FT_COMMIT, else the build's, %s)\n"
            "  -h, --help          this help\n",
            FT_BUILD_COMMIT);
}

/* Parses a non-negative integer option value; -1 when it is not one. */
static int count_arg(const char *v) {
    char *end;
    long n = strtol(v, &end, 10);
    return *v && !*end && n >= 0 && n <= 1000000 ? (int)n : -1;
}

/* Sections 1-3 on the backend be (GEMMs, network calls) and through the public API (whole samples). */
static void sections_1_to_3(ft_backend *be, const options *op, const char *pred, const char *ref, const char *vae) {
    fprintf(stderr, "1. GEMM rate at the model's shapes (%s backend)\n", be->name);
    int D = op->tiny ? 144 : 1152, F = 4 * D, T = op->tiny ? 64 : 256;
    for (int b = 0; b < op->n_batches; b++) {
        int M = 2 * op->batches[b] * T;
        bench_gemm(be, "qkv", M, 3 * D, D, FT_EPI_NONE, op);
        bench_gemm(be, "proj", M, D, D, FT_EPI_NONE, op);
        bench_gemm(be, "fc1+gelu", M, F, D, FT_EPI_GELU_TANH, op);
        bench_gemm(be, "fc2", M, D, F, FT_EPI_NONE, op);
    }
    /* the hoisted adaLN GEMM of an H1P5R3 trajectory at batch 8: 7 points x 16 rows */
    bench_gemm(be, "adaLN", 7 * 16, (op->tiny ? 2 : 28) * 6 * D + 2 * D, D, FT_EPI_NONE, op);
    flush_outputs(op);

    fprintf(stderr, "2. network calls%s\n", g_graphs ? " (graph replay)" : "");
    for (int b = 0; b < op->n_batches; b++) {
        bench_net(be, pred, FT_ROLE_PREDICTOR, op->batches[b], op);
        bench_net(be, ref, FT_ROLE_REFINER, op->batches[b], op);
        if (op->vae) bench_vae(be, vae, op->batches[b], op);
    }
    flush_outputs(op);

    fprintf(stderr, "3. whole samples (public API)\n");
    /* graph and eager contexts side by side, so a budget cut keeps both modes of the first batches; a backend
     * without graphs (the CPU) runs eager only, once */
    ft_context *cg = open_context(op, g_graphs, pred, ref, op->vae ? vae : NULL);
    ft_context *ce = op->eager && g_graphs ? open_context(op, 0, pred, ref, NULL) : NULL;
    for (int b = 0; cg && b < op->n_batches; b++)
        for (int s = 0; s < op->n_samplers; s++) {
            bench_sample(cg, op->samplers[s], op->batches[b], g_graphs, 0, op);
            if (op->vae) bench_sample(cg, op->samplers[s], op->batches[b], g_graphs, 1, op);
            if (ce) bench_sample(ce, op->samplers[s], op->batches[b], 0, 0, op);
            flush_outputs(op);
        }
    ft_context_free(cg);
    ft_context_free(ce);
}

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    o.n_batches = parse_ints("1,8,64", o.batches);
    o.n_samplers = parse_words("heun:8,H1P5R3,H2P4R2,H8P9R5", o.samplers);
    o.reps = 5;
    o.warmup = 1;
    o.vae = 1;
    o.eager = 1;
    o.fid = 1;
    o.fid_batches = 8;
    int only_fid = 0;
    o.backend = FT_BACKEND_CUDA;
    o.dtype = FT_DTYPE_BF16;
    const char *tmp = getenv("TMPDIR");
    snprintf(o.weights_dir, sizeof o.weights_dir, "%s/flowturbo-bench", tmp ? tmp : "/tmp");
    const char *env_commit = getenv("FT_COMMIT");
    snprintf(o.commit, sizeof o.commit, "%s", env_commit && *env_commit ? env_commit : FT_BUILD_COMMIT);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
#define ARG(name) (!strcmp(a, name) && (v ? (i++, 1) : (bad = 1, 0)))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (ARG("--batches")) {
            o.n_batches = parse_ints(v, o.batches);
            for (int b = 0; b < o.n_batches; b++) bad |= o.batches[b] < 1;
        } else if (ARG("--samplers")) o.n_samplers = parse_words(v, o.samplers);
        else if (ARG("--reps")) bad = (o.reps = count_arg(v)) < 1;
        else if (ARG("--warmup")) bad = (o.warmup = count_arg(v)) < 0;
        else if (ARG("--preset")) o.tiny = !strcmp(v, "tiny"), bad = !o.tiny && strcmp(v, "xl");
        else if (ARG("--backend")) o.backend = !strcmp(v, "cpu") ? FT_BACKEND_CPU : FT_BACKEND_CUDA,
                                   bad = strcmp(v, "cpu") && strcmp(v, "cuda");
        else if (ARG("--dtype")) o.dtype = !strcmp(v, "f16") ? FT_DTYPE_F16 : FT_DTYPE_BF16,
                                 bad = strcmp(v, "f16") && strcmp(v, "bf16");
        else if (ARG("--weights-dir")) snprintf(o.weights_dir, sizeof o.weights_dir, "%s", v);
        else if (ARG("--json")) snprintf(o.json, sizeof o.json, "%s", v);
        else if (ARG("--md")) snprintf(o.md, sizeof o.md, "%s", v);
        else if (ARG("--commit")) snprintf(o.commit, sizeof o.commit, "%s", v);
        else if (ARG("--budget")) bad = (o.budget = atof(v)) <= 0;
        else if (!strcmp(a, "--no-vae")) o.vae = 0;
        else if (!strcmp(a, "--no-eager")) o.eager = 0;
        else if (!strcmp(a, "--no-fid")) o.fid = 0;
        else if (!strcmp(a, "--only-fid")) only_fid = 1;
        else if (ARG("--fid-batches")) bad = (o.fid_batches = count_arg(v)) < 1;
        else if (!bad) {
            fprintf(stderr, "flowturbo-bench: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "flowturbo-bench: option '%s' %s%s%s\n\n", a, v ? "got a bad value '" : "needs a value",
                    v ? v : "", v ? "'" : "");
            usage(stderr);
            return 2;
        }
#undef ARG
    }
    g_t0 = now_s();
    char err[512];
    ft_backend *be = ft_backend_create(o.backend, 0, 0, o.dtype, err, sizeof err);
    if (!be) {
        fprintf(stderr, "flowturbo-bench: no %s backend: %s\n", o.backend == FT_BACKEND_CPU ? "cpu" : "cuda", err);
        return 3;
    }
    static char backend_name[32];
    snprintf(backend_name, sizeof backend_name, "%s", be->name);
    g_backend = backend_name;
    g_graphs = be->begin_capture != NULL;
    char pred[600], ref[600], vae[600];
    if (!ensure_models(&o, pred, ref, vae, sizeof pred)) return 4;
    note_memory();

    if (!only_fid) sections_1_to_3(be, &o, pred, ref, vae);
    be->destroy(be);

    if (o.fid && o.vae) {
        fprintf(stderr, "4. FID pipeline (noise -> uint8 images in host memory)\n");
        ft_context *cm = open_context(&o, g_graphs, pred, ref, vae);
        for (int b = 0; cm && b < o.n_batches; b++)
            for (int s = 0; s < o.n_samplers; s++) {
                bench_fid(cm, vae, o.samplers[s], o.batches[b], &o);
                flush_outputs(&o);
            }
        ft_context_free(cm);
    }
    if (over_budget(&o)) fprintf(stderr, "time budget of %.0f s reached: later measurements skipped\n", o.budget);
    write_md(stdout, &o);
    flush_outputs(&o);
    return 0;
}
