/*
 * bench/ft_random_model.h — writes randomly initialised engine weight files
 * (SiT/DiT predictor or FlowTurbo refiner, SD-VAE decoder) of any size, in
 * process, so GPU tests and benchmarks need no downloads. Header-only (static
 * functions): included by tests/test_cuda.c and bench/flowturbo_bench.c.
 *
 * The init mirrors `weights_tool/convert.py random` (every layer non-zero,
 * activations O(1) through the depth): linear/conv weights N(0, gain^2 /
 * fan_in), biases N(0, 0.02^2), label table N(0, 0.5^2), the 2-D sin-cos
 * position table, adaLN chunks scaled so shift/scale ~ 0.25 and the gates
 * ~ 1/sqrt(2 depth); VAE norms gamma 1 + N(0, 0.1^2), beta N(0, 0.1^2).
 * Values are deterministic in (seed, tensor name); the data are generated
 * block by block (OpenMP) and streamed to the file, so an XL/2 model (675 M
 * parameters, 1.35 GB in bf16) never sits in host memory twice.
 */
#ifndef FT_RANDOM_MODEL_H
#define FT_RANDOM_MODEL_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int refiner; /* 0 predictor, 1 refiner (patch embed takes 2 * in_channels) */
    int input_size, in_channels, patch, hidden, depth, heads, num_classes, learn_sigma, guided_channels;
    double mlp_ratio;
} rm_sit_cfg;

typedef struct {
    int latent_channels, out_channels, layers_per_block, groups, n_blocks;
    int ch[8]; /* block_out_channels, diffusers order */
    double scaling_factor;
} rm_vae_cfg;

/* SiT-XL/2 at 256 px (and its 1-block refiner when refiner = 1). */
static inline rm_sit_cfg rm_sit_xl2(int refiner) {
    rm_sit_cfg c = {refiner, 32, 4, 2, 1152, refiner ? 1 : 28, 16, 1000, 1, 3, 4.0};
    return c;
}

/* SD-VAE (sd-vae-ft-ema) decoder. */
static inline rm_vae_cfg rm_sd_vae(void) {
    rm_vae_cfg c = {4, 3, 2, 32, 4, {128, 256, 512, 512}, 0.18215};
    return c;
}

/* ---- tensor list ---- */

enum { RM_NORMAL = 0, RM_GAMMA = 1, RM_POS = 2, RM_ADALN = 3 };

typedef struct {
    char name[128];
    int ndim;
    int64_t shape[4];
    int kind;
    double std;      /* RM_NORMAL / RM_GAMMA */
    int depth;       /* RM_ADALN: gates ~ 1/sqrt(2 depth) */
    size_t numel, offset;
} rm_tensor;

typedef struct {
    rm_tensor *t;
    int n, cap;
    char meta[2048];
} rm_list;

static int rm_add(rm_list *l, int kind, double std, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int rm_add(rm_list *l, int kind, double std, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        rm_tensor *t = (rm_tensor *)realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) return 0;
        l->t = t;
        l->cap = cap;
    }
    rm_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->numel *= (size_t)shape[d];
    }
    t->kind = kind;
    t->std = std;
    return 1;
}

static void rm_meta(rm_list *l, const char *key, const char *value) {
    size_t len = strlen(l->meta);
    snprintf(l->meta + len, sizeof l->meta - len, "%s\"%s\":\"%s\"", len ? "," : "", key, value);
}

static void rm_meta_int(rm_list *l, const char *key, int v) {
    char b[32];
    snprintf(b, sizeof b, "%d", v);
    rm_meta(l, key, b);
}

/* ---- values ---- */

static inline uint64_t rm_mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rm_hash(const char *s, uint64_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return rm_mix(h);
}

/* Standard normal from a counter (Box-Muller on two mixed 53-bit uniforms). */
static inline double rm_normal(uint64_t key, uint64_t i) {
    uint64_t a = rm_mix(key ^ (2 * i)), b = rm_mix(key ^ (2 * i + 1) ^ 0x5851F42D4C957F2Dull);
    double u1 = ((a >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = (b >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Element i of tensor t. */
static double rm_value(const rm_tensor *t, uint64_t key, size_t i) {
    switch (t->kind) {
    case RM_GAMMA: return 1.0 + t->std * rm_normal(key, i);
    case RM_POS: { /* MAE 2-D sin-cos, [1, g*g, D]: first half from w (column), second from h (row) */
        int64_t T = t->shape[1], D = t->shape[2];
        int64_t g = (int64_t)llround(sqrt((double)T));
        int64_t tok = (int64_t)(i / (size_t)D), d = (int64_t)(i % (size_t)D);
        int64_t half = D / 2, quarter = D / 4;
        double pos = d < half ? (double)(tok % g) : (double)(tok / g);
        int64_t dd = d % half;
        int64_t k = dd % quarter;
        double omega = 1.0 / pow(10000.0, (double)k / (D / 4.0));
        return dd < quarter ? sin(pos * omega) : cos(pos * omega);
    }
    case RM_ADALN: { /* rows in chunks of D: shift, scale, gate (x2), or shift, scale (final) */
        int64_t D = t->shape[1];
        int chunk = (int)((i / (size_t)D) / (size_t)D);
        double gate = 1.0 / sqrt(2.0 * (t->depth > 1 ? t->depth : 1));
        static const int is_gate[6] = {0, 0, 1, 0, 0, 1};
        double target = (t->shape[0] == 6 * D && is_gate[chunk % 6]) ? gate : 0.25;
        return target / (sqrt((double)D) * 0.35) * rm_normal(key, i);
    }
    default: return t->std * rm_normal(key, i);
    }
}

static inline uint16_t rm_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- file ---- */

static int rm_write(const char *path, rm_list *l, uint64_t seed, int bf16, char *err, size_t errn) {
    size_t esz = bf16 ? 2 : 4, off = 0;
    for (int i = 0; i < l->n; i++) {
        l->t[i].offset = off;
        off += l->t[i].numel * esz;
    }
    size_t cap = 4096 + strlen(l->meta) + (size_t)l->n * 256, len = 0;
    char *hdr = (char *)malloc(cap);
    if (!hdr) {
        snprintf(err, errn, "out of memory");
        return 0;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{%s}", l->meta);
    for (int i = 0; i < l->n; i++) {
        const rm_tensor *t = &l->t[i];
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                                bf16 ? "BF16" : "F32");
        for (int d = 0; d < t->ndim; d++) len += (size_t)snprintf(hdr + len, cap - len, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", t->offset,
                                t->offset + t->numel * esz);
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        snprintf(err, errn, "cannot create %s", path);
        return 0;
    }
    uint8_t n8[8];
    for (int b = 0; b < 8; b++) n8[b] = (uint8_t)((uint64_t)len >> (8 * b));
    int ok = fwrite(n8, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    free(hdr);
    const size_t block = (size_t)1 << 20;
    void *buf = malloc(block * esz);
    ok = ok && buf;
    for (int i = 0; ok && i < l->n; i++) {
        const rm_tensor *t = &l->t[i];
        uint64_t key = rm_hash(t->name, seed);
        for (size_t b0 = 0; ok && b0 < t->numel; b0 += block) {
            long m = (long)(t->numel - b0 < block ? t->numel - b0 : block);
#pragma omp parallel for schedule(static) if (m > 65536)
            for (long j = 0; j < m; j++) {
                float v = (float)rm_value(t, key, b0 + (size_t)j);
                if (bf16) ((uint16_t *)buf)[j] = rm_bf16(v);
                else ((float *)buf)[j] = v;
            }
            ok = fwrite(buf, esz, (size_t)m, f) == (size_t)m;
        }
    }
    free(buf);
    if (fclose(f) != 0) ok = 0;
    if (!ok) snprintf(err, errn, "cannot write %s", path);
    return ok;
}

/* ---- models ---- */

static inline int rm_write_sit(const char *path, const rm_sit_cfg *c, uint64_t seed, int bf16, char *err, size_t errn) {
    rm_list l;
    memset(&l, 0, sizeof l);
    int64_t D = c->hidden, p = c->patch, g = c->input_size / c->patch, T = g * g;
    int64_t F = (int64_t)(c->hidden * c->mlp_ratio), cin = c->refiner ? 2 * c->in_channels : c->in_channels;
    int64_t out = c->learn_sigma ? 2 * c->in_channels : c->in_channels;
    int ok = 1;
#define S(...) ((int64_t[]){__VA_ARGS__})
    ok &= rm_add(&l, RM_POS, 0, 3, S(1, T, D), "pos_embed");
    ok &= rm_add(&l, RM_NORMAL, 1.0 / sqrt((double)(cin * p * p)), 4, S(D, cin, p, p), "x_embedder.proj.weight");
    ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(D), "x_embedder.proj.bias");
    ok &= rm_add(&l, RM_NORMAL, 1.0 / 16.0, 2, S(D, 256), "t_embedder.mlp.0.weight");
    ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(D), "t_embedder.mlp.0.bias");
    ok &= rm_add(&l, RM_NORMAL, 1.4 / sqrt((double)D), 2, S(D, D), "t_embedder.mlp.2.weight");
    ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(D), "t_embedder.mlp.2.bias");
    ok &= rm_add(&l, RM_NORMAL, 0.5, 2, S(c->num_classes + 1, D), "y_embedder.embedding_table.weight");
    for (int b = 0; b < c->depth; b++) {
        ok &= rm_add(&l, RM_NORMAL, 1.0 / sqrt((double)D), 2, S(3 * D, D), "blocks.%d.attn.qkv.weight", b);
        ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(3 * D), "blocks.%d.attn.qkv.bias", b);
        ok &= rm_add(&l, RM_NORMAL, 1.0 / sqrt((double)D), 2, S(D, D), "blocks.%d.attn.proj.weight", b);
        ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(D), "blocks.%d.attn.proj.bias", b);
        ok &= rm_add(&l, RM_NORMAL, 1.0 / sqrt((double)D), 2, S(F, D), "blocks.%d.mlp.fc1.weight", b);
        ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(F), "blocks.%d.mlp.fc1.bias", b);
        ok &= rm_add(&l, RM_NORMAL, 1.6 / sqrt((double)F), 2, S(D, F), "blocks.%d.mlp.fc2.weight", b);
        ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(D), "blocks.%d.mlp.fc2.bias", b);
        ok &= rm_add(&l, RM_ADALN, 0, 2, S(6 * D, D), "blocks.%d.adaLN_modulation.1.weight", b);
        l.t[l.n - 1].depth = c->depth;
        ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(6 * D), "blocks.%d.adaLN_modulation.1.bias", b);
    }
    ok &= rm_add(&l, RM_NORMAL, 1.0 / sqrt((double)D), 2, S(p * p * out, D), "final_layer.linear.weight");
    ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(p * p * out), "final_layer.linear.bias");
    ok &= rm_add(&l, RM_ADALN, 0, 2, S(2 * D, D), "final_layer.adaLN_modulation.1.weight");
    if (ok) l.t[l.n - 1].depth = c->depth;
    ok &= rm_add(&l, RM_NORMAL, 0.02, 1, S(2 * D), "final_layer.adaLN_modulation.1.bias");
#undef S
    if (!ok) {
        free(l.t);
        snprintf(err, errn, "out of memory");
        return 0;
    }
    char ratio[32], src[96];
    snprintf(ratio, sizeof ratio, "%g", c->mlp_ratio);
    snprintf(src, sizeof src, "random init (seed %llu, bench/ft_random_model.h)", (unsigned long long)seed);
    rm_meta(&l, "flowturbo.format", "1");
    rm_meta(&l, "role", c->refiner ? "refiner" : "predictor");
    rm_meta(&l, "arch", "sit");
    rm_meta_int(&l, "input_size", c->input_size);
    rm_meta_int(&l, "in_channels", c->in_channels);
    rm_meta_int(&l, "out_channels", (int)out);
    rm_meta_int(&l, "patch_size", c->patch);
    rm_meta_int(&l, "hidden_size", c->hidden);
    rm_meta_int(&l, "depth", c->depth);
    rm_meta_int(&l, "num_heads", c->heads);
    rm_meta(&l, "mlp_ratio", ratio);
    rm_meta_int(&l, "num_classes", c->num_classes);
    rm_meta(&l, "learn_sigma", c->learn_sigma ? "true" : "false");
    rm_meta_int(&l, "guided_channels", c->guided_channels);
    rm_meta(&l, "source", src);
    int r = rm_write(path, &l, seed, bf16, err, errn);
    free(l.t);
    return r;
}

static int rm_add_conv(rm_list *l, int64_t cout, int64_t cin, int64_t k, double gain, const char *name) {
    int ok = rm_add(l, RM_NORMAL, gain / sqrt((double)(cin * k * k)), 4, (int64_t[]){cout, cin, k, k}, "%s.weight", name);
    return ok && rm_add(l, RM_NORMAL, 0.02, 1, (int64_t[]){cout}, "%s.bias", name);
}

static int rm_add_norm(rm_list *l, int64_t c, const char *name) {
    int ok = rm_add(l, RM_GAMMA, 0.1, 1, (int64_t[]){c}, "%s.weight", name);
    return ok && rm_add(l, RM_NORMAL, 0.1, 1, (int64_t[]){c}, "%s.bias", name);
}

static int rm_add_resnet(rm_list *l, int64_t cin, int64_t cout, const char *prefix) {
    char n[160];
    int ok = 1;
    snprintf(n, sizeof n, "%s.norm1", prefix), ok &= rm_add_norm(l, cin, n);
    snprintf(n, sizeof n, "%s.conv1", prefix), ok &= rm_add_conv(l, cout, cin, 3, 1.0, n);
    snprintf(n, sizeof n, "%s.norm2", prefix), ok &= rm_add_norm(l, cout, n);
    snprintf(n, sizeof n, "%s.conv2", prefix), ok &= rm_add_conv(l, cout, cout, 3, 0.7, n);
    if (cin != cout) snprintf(n, sizeof n, "%s.conv_shortcut", prefix), ok &= rm_add_conv(l, cout, cin, 1, 1.0, n);
    return ok;
}

static inline int rm_write_vae(const char *path, const rm_vae_cfg *c, uint64_t seed, int bf16, char *err, size_t errn) {
    rm_list l;
    memset(&l, 0, sizeof l);
    int64_t L = c->latent_channels, top = c->ch[c->n_blocks - 1];
    int ok = rm_add_conv(&l, L, L, 1, c->scaling_factor, "post_quant_conv");
    ok &= rm_add_conv(&l, top, L, 3, 1.0, "decoder.conv_in");
    ok &= rm_add_resnet(&l, top, top, "decoder.mid_block.resnets.0");
    const char *ap = "decoder.mid_block.attentions.0";
    char n[160];
    snprintf(n, sizeof n, "%s.group_norm", ap), ok &= rm_add_norm(&l, top, n);
    static const char *lin[4] = {"to_q", "to_k", "to_v", "to_out.0"};
    for (int i = 0; i < 4; i++) {
        ok &= rm_add(&l, RM_NORMAL, 1.0 / sqrt((double)top), 2, (int64_t[]){top, top}, "%s.%s.weight", ap, lin[i]);
        ok &= rm_add(&l, RM_NORMAL, 0.02, 1, (int64_t[]){top}, "%s.%s.bias", ap, lin[i]);
    }
    ok &= rm_add_resnet(&l, top, top, "decoder.mid_block.resnets.1");
    int64_t prev = top;
    for (int i = 0; i < c->n_blocks; i++) {
        int64_t outc = c->ch[c->n_blocks - 1 - i];
        for (int j = 0; j <= c->layers_per_block; j++) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
            ok &= rm_add_resnet(&l, j == 0 ? prev : outc, outc, n);
        }
        if (i < c->n_blocks - 1) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            ok &= rm_add_conv(&l, outc, outc, 3, 1.0, n);
        }
        prev = outc;
    }
    ok &= rm_add_norm(&l, prev, "decoder.conv_norm_out");
    ok &= rm_add_conv(&l, c->out_channels, prev, 3, 1.0, "decoder.conv_out");
    if (!ok) {
        free(l.t);
        snprintf(err, errn, "out of memory");
        return 0;
    }
    char chs[96] = "", sf[32];
    for (int i = 0; i < c->n_blocks; i++) {
        size_t len = strlen(chs);
        snprintf(chs + len, sizeof chs - len, i ? ",%d" : "%d", c->ch[i]);
    }
    snprintf(sf, sizeof sf, "%.9g", c->scaling_factor);
    rm_meta(&l, "flowturbo.format", "1");
    rm_meta(&l, "role", "vae");
    rm_meta(&l, "arch", "sd-vae-decoder");
    rm_meta_int(&l, "latent_channels", c->latent_channels);
    rm_meta_int(&l, "out_channels", c->out_channels);
    rm_meta(&l, "block_out_channels", chs);
    rm_meta_int(&l, "layers_per_block", c->layers_per_block);
    rm_meta_int(&l, "norm_num_groups", c->groups);
    rm_meta(&l, "scaling_factor", sf);
    rm_meta(&l, "source", "random init (bench/ft_random_model.h)");
    int r = rm_write(path, &l, seed, bf16, err, errn);
    free(l.t);
    return r;
}

#endif /* FT_RANDOM_MODEL_H */
