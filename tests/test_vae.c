/* tests/test_vae.c — the SD-VAE decoder: CPU conv2d / GroupNorm against naive
 * double-precision references, decoder stages and the whole decode against
 * the PyTorch reference (tests/data/vae_tiny_forward.golden.safetensors), the
 * authors' conformance vectors (tests/data/conformance/vae*), the public API
 * (ft_load / ft_decode / ft_generate with a VAE) and metadata errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/vae.h"
#include "../host/npy.h"
#include "test.h"

#define TOL 1e-5

static ft_backend *cpu(int threads) {
    char e[256];
    ft_backend *be = ft_backend_cpu_create(threads, e, sizeof e);
    if (!be) test_note("cpu backend: %s", e);
    return be;
}

/* Deterministic pseudo-random floats in [-1, 1). */
static void fill(float *x, size_t n, uint32_t seed) {
    uint64_t s = seed * 2654435761u + 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

static int close_enough(const char *what, const float *got, const float *want, size_t n, double tol) {
    double e = rel_l2(got, want, n);
    if (!(e <= tol) || !all_finite(got, n)) {
        test_note("%s: rel L2 %.3g > %.0e", what, e, tol);
        return 0;
    }
    return 1;
}

/* ---- conv2d and GroupNorm against naive references ---- */

static void ref_conv(float *y, const float *x, const float *w, const float *b, int N, int Cin, int S, int Cout, int k,
                     int pad, int up2x) {
    int Si = up2x ? 2 * S : S, So = Si + 2 * pad - k + 1;
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Cout; co++)
            for (int oy = 0; oy < So; oy++)
                for (int ox = 0; ox < So; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy + ky - pad, ix = ox + kx - pad;
                                if (iy < 0 || iy >= Si || ix < 0 || ix >= Si) continue;
                                if (up2x) iy >>= 1, ix >>= 1;
                                acc += (double)w[((size_t)(co * Cin + ci) * k + ky) * k + kx] *
                                       x[((size_t)(n * Cin + ci) * S + iy) * S + ix];
                            }
                    y[((size_t)(n * Cout + co) * So + oy) * So + ox] = (float)acc;
                }
}

/* Runs one conv shape through every path (Winograd with the CPU's best
 * micro-kernel, with the AVX2 one and with the plain C 8x48 one that has the
 * AVX-512 kernel's layouts, the direct path with each of them, OpenBLAS)
 * against one naive reference. */
static int conv_case(ft_backend *be, int N, int Cin, int S, int Cout, int k, int pad, int up2x, int bias) {
    static const char *paths[][2] = {{"", ""},         {"avx2", ""}, {"ref8x48", ""}, {"avx2", "0"},
                                     {"ref8x48", "0"}, {"", "0"},    {"blas", ""}};
    int Si = up2x ? 2 * S : S, So = Si + 2 * pad - k + 1;
    size_t nx = (size_t)N * Cin * S * S, nw = (size_t)Cout * Cin * k * k, ny = (size_t)N * Cout * So * So;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(Cout * 4), *y = malloc(ny * 4), *r = malloc(ny * 4);
    fill(x, nx, 1 + Cin);
    fill(w, nw, 2 + Cout);
    fill(b, Cout, 3);
    ref_conv(r, x, w, bias ? b : NULL, N, Cin, S, Cout, k, pad, up2x);
    const char *saved = getenv("FT_CPU_CONV"), *saved_wg = getenv("FT_CPU_WINOGRAD");
    char keep[32], keep_wg[32];
    snprintf(keep, sizeof keep, "%s", saved ? saved : "");
    snprintf(keep_wg, sizeof keep_wg, "%s", saved_wg ? saved_wg : "");
    int ok = 1;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (*paths[i][0]) setenv("FT_CPU_CONV", paths[i][0], 1);
        else unsetenv("FT_CPU_CONV");
        if (*paths[i][1]) setenv("FT_CPU_WINOGRAD", paths[i][1], 1);
        else unsetenv("FT_CPU_WINOGRAD");
        for (size_t j = 0; j < ny; j++) y[j] = NAN; /* every output must be written */
        be->conv2d(be, y, x, w, bias ? b : NULL, N, Cin, S, Cout, k, pad, up2x);
        char what[200];
        snprintf(what, sizeof what, "conv N%d Cin%d S%d Cout%d k%d pad%d up2x%d bias%d (FT_CPU_CONV=%s FT_CPU_WINOGRAD=%s)",
                 N, Cin, S, Cout, k, pad, up2x, bias, paths[i][0], paths[i][1]);
        if (be->error[0]) test_note("%s: backend error %s", what, be->error), ok = 0;
        else ok &= close_enough(what, y, r, ny, TOL);
    }
    if (keep_wg[0]) setenv("FT_CPU_WINOGRAD", keep_wg, 1);
    else unsetenv("FT_CPU_WINOGRAD");
    if (keep[0]) setenv("FT_CPU_CONV", keep, 1);
    else unsetenv("FT_CPU_CONV");
    free(x), free(w), free(b), free(y), free(r);
    return ok;
}

TEST(vae_op_conv2d_vs_naive) {
    ft_backend *be = cpu(2);
    if (!be) return FAIL;
    int ok = 1;
    ok &= conv_case(be, 2, 5, 7, 6, 3, 1, 0, 1);      /* 3x3 pad 1 */
    ok &= conv_case(be, 2, 5, 7, 6, 3, 1, 1, 1);      /* fused nearest 2x upsample */
    ok &= conv_case(be, 2, 7, 6, 5, 1, 0, 0, 1);      /* 1x1 */
    ok &= conv_case(be, 1, 3, 5, 4, 1, 0, 1, 0);      /* 1x1 on the upsampled input, no bias */
    ok &= conv_case(be, 1, 4, 6, 3, 3, 0, 0, 1);      /* valid conv, output smaller than input */
    ok &= conv_case(be, 1, 2, 4, 3, 5, 2, 1, 1);      /* 5x5 pad 2 */
    ok &= conv_case(be, 3, 1, 1, 2, 3, 1, 0, 1);      /* 1x1 image: all taps but the centre are padding */
    ok &= conv_case(be, 1, 300, 2, 37, 3, 1, 0, 1);   /* K not a multiple of the k block, odd Cout */
    ok &= conv_case(be, 1, 64, 72, 9, 3, 1, 0, 1);    /* large: several column blocks */
    ok &= conv_case(be, 1, 33, 40, 17, 3, 1, 1, 1);   /* large, upsampled */
    ok &= conv_case(be, 1, 128, 256, 1, 3, 1, 0, 1);  /* too big for the scratch at once: 2 bands */
    ok &= conv_case(be, 1, 1000, 2, 1000, 3, 1, 0, 1); /* 9M-float filter: the im2col fallback */
    /* Winograd: odd sides (last tile half outside), tiles of two images in one block, a block boundary inside a
     * tile row, Cin over two k blocks, Cout not a whole panel, upsampled odd input */
    ok &= conv_case(be, 3, 19, 9, 13, 3, 1, 0, 1);
    ok &= conv_case(be, 2, 130, 31, 50, 3, 1, 0, 0);
    ok &= conv_case(be, 1, 8, 15, 8, 3, 1, 1, 1);
    ok &= conv_case(be, 2, 600, 12, 600, 3, 1, 0, 1); /* U (5.8M floats) leaves room for one thread's slice */
    be->destroy(be);
    return ok ? PASS : FAIL;
}

static int gn_case(ft_backend *be, int N, int C, int HW, int G, int silu, float offset, int in_place) {
    size_t n = (size_t)N * C * HW;
    float *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4), *ga = malloc(C * 4), *bt = malloc(C * 4);
    fill(x, n, 7 + C);
    for (size_t i = 0; i < n; i++) x[i] = x[i] * 3.0f + offset;
    fill(ga, C, 8);
    fill(bt, C, 9);
    int cg = C / G;
    for (int b = 0; b < N; b++)
        for (int g = 0; g < G; g++) {
            const float *xs = x + ((size_t)b * C + (size_t)g * cg) * HW;
            size_t cnt = (size_t)cg * HW;
            double s = 0, v = 0;
            for (size_t i = 0; i < cnt; i++) s += xs[i];
            double mu = s / cnt;
            for (size_t i = 0; i < cnt; i++) v += (xs[i] - mu) * (xs[i] - mu);
            double rstd = 1.0 / sqrt(v / cnt + 1e-6);
            for (size_t i = 0; i < cnt; i++) {
                int ch = g * cg + (int)(i / HW);
                double o = (xs[i] - mu) * rstd * ga[ch] + bt[ch];
                if (silu) o = o / (1.0 + exp(-o));
                r[((size_t)b * C + (size_t)g * cg) * HW + i] = (float)o;
            }
        }
    if (in_place) {
        memcpy(y, x, n * 4);
        be->group_norm(be, y, y, ga, bt, N, C, HW, G, 1e-6f, silu);
    } else {
        be->group_norm(be, y, x, ga, bt, N, C, HW, G, 1e-6f, silu);
    }
    char what[128];
    snprintf(what, sizeof what, "group_norm N%d C%d HW%d G%d silu%d offset%g", N, C, HW, G, silu, offset);
    int ok = close_enough(what, y, r, n, 1e-6); /* fp32 statistics done right are ~1e-7 */
    free(x), free(y), free(r), free(ga), free(bt);
    return ok;
}

TEST(vae_op_group_norm_vs_naive) {
    ft_backend *be = cpu(2);
    if (!be) return FAIL;
    int ok = 1;
    ok &= gn_case(be, 2, 32, 49, 8, 0, 0.0f, 0);
    ok &= gn_case(be, 2, 32, 49, 8, 1, 0.0f, 0);
    ok &= gn_case(be, 1, 12, 5, 3, 1, 0.0f, 0);
    ok &= gn_case(be, 1, 8, 4096, 1, 0, 0.0f, 0);     /* one group, many elements */
    ok &= gn_case(be, 1, 64, 1024, 32, 1, 300.0f, 0); /* large mean: statistics must not lose precision */
    ok &= gn_case(be, 3, 6, 1, 6, 1, 0.0f, 0);        /* one element per group */
    ok &= gn_case(be, 1, 16, 100, 4, 1, 0.5f, 1);     /* y == x */
    be->destroy(be);
    return ok ? PASS : FAIL;
}

/* ---- decoder stages from the golden intermediates ---- */

typedef struct {
    ft_backend *be;
    golden g, w; /* golden intermediates; the model file read as tensors */
    int ok;
} stage_fx;

static int stage_open(stage_fx *fx) {
    memset(fx, 0, sizeof *fx);
    fx->be = cpu(2);
    fx->ok = fx->be && golden_open(&fx->g, "vae_tiny_forward.golden.safetensors") &&
             golden_open(&fx->w, "vae_tiny.safetensors");
    return fx->ok;
}

static void stage_close(stage_fx *fx) {
    golden_close(&fx->g);
    golden_close(&fx->w);
    if (fx->be) fx->be->destroy(fx->be);
}

static float *G(stage_fx *fx, const char *name) { return golden_get(&fx->g, name, NULL); }

static float *W(stage_fx *fx, const char *fmt, const char *a, const char *b) {
    char name[160];
    snprintf(name, sizeof name, fmt, a, b);
    return golden_get(&fx->w, name, NULL);
}

static int stage_match(stage_fx *fx, const char *name, const float *got, size_t n) {
    size_t gn = 0;
    float *want = golden_get(&fx->g, name, &gn);
    int ok = want && gn == n && close_enough(name, got, want, n, TOL);
    if (want && gn != n) test_note("%s: %zu elements, golden has %zu", name, n, gn);
    free(want);
    return ok;
}

/* conv with weights named prefix.weight / prefix.bias */
static void conv_w(stage_fx *fx, float *y, const float *x, const char *prefix, int N, int Cin, int S, int Cout, int k,
                   int pad, int up2x) {
    float *w = W(fx, "%s%s.weight", prefix, ""), *b = W(fx, "%s%s.bias", prefix, "");
    fx->be->conv2d(fx->be, y, x, w, b, N, Cin, S, Cout, k, pad, up2x);
    free(w), free(b);
}

static void gn_w(stage_fx *fx, float *y, const float *x, const char *prefix, int N, int C, int HW, int silu) {
    float *w = W(fx, "%s%s.weight", prefix, ""), *b = W(fx, "%s%s.bias", prefix, "");
    fx->be->group_norm(fx->be, y, x, w, b, N, C, HW, 8, 1e-6f, silu);
    free(w), free(b);
}

/* diffusers ResnetBlock2D through the backend ops (out may not alias x). */
static void resnet_w(stage_fx *fx, float *out, const float *x, const char *pre, int N, int cin, int cout, int S) {
    size_t big = (size_t)N * (cin > cout ? cin : cout) * S * S;
    float *h = malloc(big * 4), *t = malloc(big * 4), *sc = malloc(big * 4);
    char p[128];
    snprintf(p, sizeof p, "%s.norm1", pre);
    gn_w(fx, h, x, p, N, cin, S * S, 1);
    snprintf(p, sizeof p, "%s.conv1", pre);
    conv_w(fx, t, h, p, N, cin, S, cout, 3, 1, 0);
    snprintf(p, sizeof p, "%s.norm2", pre);
    gn_w(fx, h, t, p, N, cout, S * S, 1);
    snprintf(p, sizeof p, "%s.conv2", pre);
    conv_w(fx, t, h, p, N, cout, S, cout, 3, 1, 0);
    const float *skip = x;
    if (cin != cout) {
        snprintf(p, sizeof p, "%s.conv_shortcut", pre);
        conv_w(fx, sc, x, p, N, cin, S, cout, 1, 0, 0);
        skip = sc;
    }
    fx->be->add(fx->be, out, skip, t, (size_t)N * cout * S * S);
    free(h), free(t), free(sc);
}

/* scale, post_quant_conv (1x1), conv_in (3x3), conv_norm_out (GN + SiLU), conv_out. */
TEST(vae_stage_convs_and_norm_out) {
    stage_fx fx;
    int ok = 0;
    if (stage_open(&fx)) {
        ft_backend *be = fx.be;
        int N = 2;
        float *lat = G(&fx, "in.latents"), *scaled = G(&fx, "scaled"), *pq = G(&fx, "post_quant");
        float *ci = G(&fx, "conv_in"), *up2 = G(&fx, "up2"), *no = G(&fx, "norm_out");
        float *y = malloc((size_t)N * 16 * 16 * 16 * 4);
        ok = 1;
        be->scale(be, y, lat, 1.0f / 0.18215f, (size_t)N * 64);
        ok &= stage_match(&fx, "scaled", y, (size_t)N * 64);
        conv_w(&fx, y, scaled, "post_quant_conv", N, 4, 4, 4, 1, 0, 0);
        ok &= stage_match(&fx, "post_quant", y, (size_t)N * 64);
        conv_w(&fx, y, pq, "decoder.conv_in", N, 4, 4, 32, 3, 1, 0);
        ok &= stage_match(&fx, "conv_in", y, (size_t)N * 32 * 16);
        gn_w(&fx, y, up2, "decoder.conv_norm_out", N, 16, 256, 1);
        ok &= stage_match(&fx, "norm_out", y, (size_t)N * 16 * 256);
        conv_w(&fx, y, no, "decoder.conv_out", N, 16, 16, 3, 3, 1, 0);
        ok &= stage_match(&fx, "out", y, (size_t)N * 3 * 256);
        free(lat), free(scaled), free(pq), free(ci), free(up2), free(no), free(y);
    }
    stage_close(&fx);
    return ok ? PASS : FAIL;
}

/* Resnets (identity and conv_shortcut) and the upsampler conv (nearest 2x fused). */
TEST(vae_stage_resnets_and_upsample) {
    stage_fx fx;
    int ok = 0;
    if (stage_open(&fx)) {
        int N = 2;
        float *ci = G(&fx, "conv_in"), *attn = G(&fx, "mid.attn"), *res1 = G(&fx, "mid.res1"), *up1 = G(&fx, "up1");
        size_t big = (size_t)N * 32 * 16 * 16;
        float *a = malloc(big * 4), *b = malloc(big * 4);
        ok = 1;
        resnet_w(&fx, a, ci, "decoder.mid_block.resnets.0", N, 32, 32, 4);
        ok &= stage_match(&fx, "mid.res0", a, (size_t)N * 32 * 16);
        resnet_w(&fx, a, attn, "decoder.mid_block.resnets.1", N, 32, 32, 4);
        ok &= stage_match(&fx, "mid.res1", a, (size_t)N * 32 * 16);
        /* up block 0: 2 resnets at 4x4, then nearest 2x + conv */
        resnet_w(&fx, a, res1, "decoder.up_blocks.0.resnets.0", N, 32, 32, 4);
        resnet_w(&fx, b, a, "decoder.up_blocks.0.resnets.1", N, 32, 32, 4);
        conv_w(&fx, a, b, "decoder.up_blocks.0.upsamplers.0.conv", N, 32, 4, 32, 3, 1, 1);
        ok &= stage_match(&fx, "up0", a, (size_t)N * 32 * 64);
        /* up block 2: resnet 32 -> 16 with conv_shortcut, then 16 -> 16; no upsampler */
        resnet_w(&fx, a, up1, "decoder.up_blocks.2.resnets.0", N, 32, 16, 16);
        resnet_w(&fx, b, a, "decoder.up_blocks.2.resnets.1", N, 16, 16, 16);
        ok &= stage_match(&fx, "up2", b, (size_t)N * 16 * 256);
        free(ci), free(attn), free(res1), free(up1), free(a), free(b);
    }
    stage_close(&fx);
    return ok ? PASS : FAIL;
}

/* Mid attention: GroupNorm -> tokens -> packed qkv linear -> 1-head attention -> to_out -> NCHW + residual. */
TEST(vae_stage_mid_attention) {
    stage_fx fx;
    int ok = 0;
    if (stage_open(&fx)) {
        ft_backend *be = fx.be;
        int N = 2, C = 32, T = 16;
        size_t n = (size_t)N * C * T;
        const char *pre = "decoder.mid_block.attentions.0";
        float *x = G(&fx, "mid.res0"), *h = malloc(n * 4), *tok = malloc(n * 4), *qkv = malloc(3 * n * 4);
        float *o = malloc(n * 4), *y = malloc(n * 4);
        float *wq = malloc(3 * C * C * 4), *bq = malloc(3 * C * 4);
        const char *names[3] = {"to_q", "to_k", "to_v"};
        for (int i = 0; i < 3; i++) {
            float *w = W(&fx, "%s.%s.weight", pre, names[i]), *b = W(&fx, "%s.%s.bias", pre, names[i]);
            memcpy(wq + (size_t)i * C * C, w, (size_t)C * C * 4);
            memcpy(bq + (size_t)i * C, b, (size_t)C * 4);
            free(w), free(b);
        }
        float *wo = W(&fx, "%s.%s.weight", pre, "to_out.0"), *bo = W(&fx, "%s.%s.bias", pre, "to_out.0");
        char p[96];
        snprintf(p, sizeof p, "%s.group_norm", pre);
        gn_w(&fx, h, x, p, N, C, T, 0);
        be->transpose(be, tok, h, N, C, T);
        be->linear(be, qkv, FT_BUF_ACT, tok, wq, bq, N * T, 3 * C, C, FT_EPI_NONE);
        be->attention(be, o, qkv, N, T, 1, C);
        be->linear(be, tok, FT_BUF_F32, o, wo, bo, N * T, C, C, FT_EPI_NONE);
        be->transpose(be, h, tok, N, T, C);
        be->add(be, y, x, h, n);
        ok = stage_match(&fx, "mid.attn", y, n);
        free(x), free(h), free(tok), free(qkv), free(o), free(y), free(wq), free(bq), free(wo), free(bo);
    }
    stage_close(&fx);
    return ok ? PASS : FAIL;
}

/* ---- whole decode ---- */

typedef struct {
    ft_backend *be;
    st_file f;
    vae_model *m;
    int open;
} model_fx;

static int model_open(model_fx *fx, const char *path, int threads) {
    memset(fx, 0, sizeof *fx);
    ft_err err;
    fx->be = cpu(threads);
    if (!fx->be) return 0;
    if (st_open(&fx->f, path, &err) != FT_OK) {
        test_note("%s", err.msg);
        return 0;
    }
    fx->open = 1;
    if (vae_load(fx->be, &fx->f, &fx->m, NULL, NULL, &err) != FT_OK) {
        test_note("%s", err.msg);
        return 0;
    }
    return 1;
}

static void model_close(model_fx *fx) {
    if (fx->m) vae_free(fx->be, fx->m);
    if (fx->open) st_close(&fx->f);
    if (fx->be) fx->be->destroy(fx->be);
}

/* Decodes with exactly vae_scratch_bytes of scratch followed by a canary. */
static float *decode(model_fx *fx, const float *lat, int n, int s, int *ok) {
    size_t bytes = vae_scratch_bytes(fx->be, fx->m, n, s), canary = 4096;
    int IS = vae_image_size(fx->m, s), oc = vae_get_config(fx->m)->out_channels;
    unsigned char *scr = aligned_alloc(256, (bytes + canary + 255) / 256 * 256);
    float *img = malloc((size_t)n * oc * IS * IS * 4);
    memset(scr + bytes, 0xA5, canary);
    vae_decode(fx->be, fx->m, scr, lat, n, s, img);
    *ok = fx->be->sync(fx->be) == FT_OK;
    if (!*ok) test_note("backend error: %s", fx->be->error);
    for (size_t i = 0; i < canary; i++)
        if (scr[bytes + i] != 0xA5) {
            test_note("vae_decode wrote past vae_scratch_bytes (%zu)", bytes);
            *ok = 0;
            break;
        }
    free(scr);
    return img;
}

/* uint8 images equal except at most max_px bytes differing by exactly 1. */
static int rgb_match(const char *what, const uint8_t *got, const uint8_t *want, size_t n, int max_px) {
    int off = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)want[i]);
        if (d) off++;
        if (d > worst) worst = d;
    }
    if (worst > 1 || off > max_px) {
        test_note("%s: %d of %zu bytes differ (max |diff| %d; allowed: %d off by 1)", what, off, n, worst, max_px);
        return 0;
    }
    if (off) test_note("%s: %d byte(s) off by 1 (rounding boundary)", what, off);
    return 1;
}

TEST(vae_decode_tiny_matches_reference) {
    model_fx fx;
    golden g = {0};
    int ok = 0;
    if (model_open(&fx, test_data("vae_tiny.safetensors"), 2) && golden_open(&g, "vae_tiny_forward.golden.safetensors")) {
        const vae_config *c = vae_get_config(fx.m);
        ok = c->n_blocks == 3 && c->block_out_channels[0] == 16 && c->block_out_channels[2] == 32 &&
             c->layers_per_block == 1 && c->groups == 8 && c->latent_channels == 4 && c->out_channels == 3 &&
             fabsf(c->scaling_factor - 0.18215f) < 1e-7f && vae_image_size(fx.m, 4) == 16;
        if (!ok) test_note("config read wrong");
        size_t np = vae_n_params(fx.m), want_np = 0;
        for (size_t i = 0; i < fx.f.n_tensors; i++) want_np += fx.f.tensors[i].numel;
        if (np != want_np) test_note("n_params %zu, file has %zu", np, want_np), ok = 0;
        float *lat = golden_get(&g, "in.latents", NULL), *want = golden_get(&g, "out", NULL);
        float *rgbf = golden_get(&g, "rgb8", NULL);
        int dok;
        float *img = decode(&fx, lat, 2, 4, &dok);
        ok &= dok && close_enough("out", img, want, 2 * 3 * 256, TOL);
        uint8_t got8[2 * 256 * 3], want8[2 * 256 * 3];
        fx.be->to_rgb8(fx.be, got8, img, 2, 3, 16);
        for (int i = 0; i < 2 * 256 * 3; i++) want8[i] = (uint8_t)rgbf[i];
        ok &= rgb_match("rgb8", got8, want8, sizeof got8, 2);
        /* one image at a time gives the same result as the batch */
        float *one = decode(&fx, lat + 64, 1, 4, &dok);
        ok &= dok && close_enough("image 1 decoded alone", one, img + 3 * 256, 3 * 256, 1e-6);
        free(lat), free(want), free(rgbf), free(img), free(one);
    }
    golden_close(&g);
    model_close(&fx);
    return ok ? PASS : FAIL;
}

/* A .npy array of the given type (host/npy.h), or NULL with a note. */
static int npy_get(const char *name, npy_dtype dtype, npy_array *a) {
    hx_err err;
    if (npy_load(test_data(name), a, &err) != 0) {
        test_note("%s", err.msg);
        return 0;
    }
    if (a->h.dtype != dtype || a->h.ndim != 4) {
        test_note("%s: expected a 4-d %s array", name, npy_dtype_name(dtype));
        npy_free(a);
        return 0;
    }
    return 1;
}

/* The authors' LDM decoder (converted to the engine format) on their latents. */
TEST(vae_conformance_authors_decoder) {
    const char *model = test_data("conformance/vae.safetensors");
    FILE *probe = fopen(model, "rb");
    if (!probe) SKIP_BECAUSE("%s not present (convert /work/shared/conformance/vae.ckpt with weights_tool/convert.py)", model);
    fclose(probe);
    model_fx fx;
    int ok = 0;
    npy_array lat = {0}, want = {0}, want8 = {0};
    float *img = NULL;
    uint8_t *got8 = NULL;
    if (model_open(&fx, model, 2) && npy_get("conformance/vae_latents.npy", NPY_F32, &lat) &&
        npy_get("conformance/vae_out_float.npy", NPY_F32, &want) &&
        npy_get("conformance/vae_out_uint8.npy", NPY_U8, &want8)) {
        const vae_config *c = vae_get_config(fx.m);
        const int64_t *ls = lat.h.shape, *os = want.h.shape, *us = want8.h.shape;
        if (ls[1] == c->latent_channels && ls[2] == ls[3] && os[0] == ls[0] && os[1] == c->out_channels &&
            os[2] == vae_image_size(fx.m, (int)ls[2]) && os[3] == os[2] && us[0] == ls[0] && us[1] == os[2] &&
            us[2] == os[2] && us[3] == 3) {
            int n = (int)ls[0], s = (int)ls[2], S = (int)os[2];
            size_t nout = (size_t)n * c->out_channels * S * S, n8 = (size_t)n * S * S * 3;
            int dok;
            img = decode(&fx, lat.data, n, s, &dok);
            ok = dok && close_enough("vae_out_float", img, want.data, nout, TOL);
            if (dok) test_note("vae_out_float: rel L2 %.3g", rel_l2(img, want.data, nout)); /* FT_TEST_VERBOSE shows it */
            got8 = malloc(n8);
            fx.be->to_rgb8(fx.be, got8, img, n, c->out_channels, S);
            ok &= rgb_match("vae_out_uint8", got8, want8.data, n8, 1);
        } else {
            test_note("conformance arrays of unexpected shapes");
        }
    }
    npy_free(&lat), npy_free(&want), npy_free(&want8);
    free(img), free(got8);
    model_close(&fx);
    return ok ? PASS : FAIL;
}

/* ---- engine files with edited metadata / tensors ---- */

typedef struct {
    const char *key, *value; /* value NULL: drop the key */
} meta_kv;

static void json_str(FILE *o, const char *s) {
    fputc('"', o);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', o);
        fputc(*s, o);
    }
    fputc('"', o);
}

/* Writes a copy of src (F32) to dst with metadata edits; when latent > 0,
 * post_quant_conv and conv_in are cut down to `latent` latent channels. */
static int write_variant(const char *src, const char *dst, const meta_kv *edits, int n_edits, int latent) {
    st_file f;
    ft_err err;
    if (st_open(&f, src, &err) != FT_OK) {
        test_note("%s", err.msg);
        return 0;
    }
    size_t len = 0;
    char *hdr = NULL;
    FILE *h = open_memstream(&hdr, &len);
    size_t off = 0;
    int64_t (*shapes)[4] = calloc(f.n_tensors, sizeof *shapes);
    fputc('{', h);
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            int64_t v = t->shape[d];
            int cut = latent > 0 && ((!strcmp(t->name, "post_quant_conv.weight") && d < 2) ||
                                     (!strcmp(t->name, "post_quant_conv.bias")) ||
                                     (!strcmp(t->name, "decoder.conv_in.weight") && d == 1));
            shapes[i][d] = cut ? latent : v;
            numel *= (size_t)shapes[i][d];
        }
        if (i) fputc(',', h);
        json_str(h, t->name);
        fprintf(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) fprintf(h, "%s%lld", d ? "," : "", (long long)shapes[i][d]);
        fprintf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + numel * 4);
        off += numel * 4;
    }
    fprintf(h, ",\"__metadata__\":{");
    int first = 1;
    for (size_t k = 0; k < f.n_meta; k++) {
        const char *v = f.meta_values[k];
        for (int e = 0; e < n_edits; e++)
            if (!strcmp(edits[e].key, f.meta_keys[k])) v = edits[e].value;
        if (!v) continue;
        if (!first) fputc(',', h);
        first = 0;
        json_str(h, f.meta_keys[k]);
        fputc(':', h);
        json_str(h, v);
    }
    for (int e = 0; e < n_edits; e++) /* added keys */
        if (edits[e].value && !st_meta(&f, edits[e].key)) {
            if (!first) fputc(',', h);
            first = 0;
            json_str(h, edits[e].key);
            fputc(':', h);
            json_str(h, edits[e].value);
        }
    fprintf(h, "}}");
    while (ftell(h) % 8) fputc(' ', h);
    fclose(h);
    FILE *o = fopen(dst, "wb");
    int ok = o != NULL;
    if (o) {
        uint64_t hl = len;
        unsigned char le[8];
        for (int b = 0; b < 8; b++) le[b] = (unsigned char)(hl >> (8 * b));
        fwrite(le, 1, 8, o);
        fwrite(hdr, 1, len, o);
        for (size_t i = 0; i < f.n_tensors && ok; i++) {
            const st_tensor *t = &f.tensors[i];
            float *full = malloc(t->numel * 4 + 4);
            st_to_f32(t, full);
            int64_t s0 = shapes[i][0], s1 = t->ndim > 1 ? shapes[i][1] : 1, in1 = t->ndim > 1 ? t->shape[1] : 1;
            size_t inner = 1;
            for (int d = 2; d < t->ndim; d++) inner *= (size_t)t->shape[d];
            for (int64_t a = 0; a < s0; a++)
                for (int64_t b = 0; b < s1; b++) fwrite(full + ((size_t)a * in1 + b) * inner, 4, inner, o);
            free(full);
        }
        ok = fclose(o) == 0;
    }
    free(hdr);
    free(shapes);
    st_close(&f);
    if (!ok) test_note("cannot write %s", dst);
    return ok;
}

static ft_context *cpu_context(void) { return test_cpu_context(2); }

/* Loads a VAE variant with one metadata edit; expects FT_ERR_FORMAT and a message naming the file and `expect`. */
static int bad_meta(ft_context *ctx, const char *tag, const char *key, const char *value, const char *expect) {
    char path[512];
    snprintf(path, sizeof path, "%s/vae_bad_%s.safetensors", test_tmpdir(), tag);
    meta_kv e = {key, value};
    if (!write_variant(test_data("vae_tiny.safetensors"), path, &e, 1, 0)) return 0;
    ft_status st = ft_load(ctx, FT_ROLE_VAE, path);
    const char *msg = ft_last_error(ctx);
    if (st != FT_ERR_FORMAT || !strstr(msg, path) || !strstr(msg, expect)) {
        test_note("%s = %s: status %s, message '%s' (expected FORMAT naming the file and '%s')", key,
                  value ? value : "(dropped)", ft_status_string(st), msg, expect);
        return 0;
    }
    return 1;
}

TEST(vae_load_rejects_bad_metadata) {
    ft_context *ctx = cpu_context();
    if (!ctx) return FAIL;
    int ok = 1;
    ok &= bad_meta(ctx, "nofmt", "flowturbo.format", NULL, "flowturbo.format");
    ok &= bad_meta(ctx, "fmt2", "flowturbo.format", "2", "flowturbo.format");
    ok &= bad_meta(ctx, "role", "role", "predictor", "predictor");
    ok &= bad_meta(ctx, "arch", "arch", "unet", "arch");
    ok &= bad_meta(ctx, "nolat", "latent_channels", NULL, "latent_channels");
    ok &= bad_meta(ctx, "lat0", "latent_channels", "0", "latent_channels");
    ok &= bad_meta(ctx, "oc", "out_channels", "2", "out_channels");
    ok &= bad_meta(ctx, "nolpb", "layers_per_block", NULL, "layers_per_block");
    ok &= bad_meta(ctx, "lpbx", "layers_per_block", "one", "layers_per_block");
    ok &= bad_meta(ctx, "groups", "norm_num_groups", "-8", "norm_num_groups");
    ok &= bad_meta(ctx, "noboc", "block_out_channels", NULL, "block_out_channels");
    ok &= bad_meta(ctx, "bocx", "block_out_channels", "16,32,x", "block_out_channels");
    ok &= bad_meta(ctx, "boce", "block_out_channels", "", "block_out_channels");
    ok &= bad_meta(ctx, "boct", "block_out_channels", "16,32,32,", "block_out_channels");
    ok &= bad_meta(ctx, "boc0", "block_out_channels", "16,0,32", "block_out_channels");
    ok &= bad_meta(ctx, "bocdiv", "block_out_channels", "16,30,32", "divisible");
    ok &= bad_meta(ctx, "boc9", "block_out_channels", "8,8,8,8,8,8,8,8,8", "more than 8");
    ok &= bad_meta(ctx, "nosf", "scaling_factor", NULL, "scaling_factor");
    ok &= bad_meta(ctx, "sf0", "scaling_factor", "0", "scaling_factor");
    ok &= bad_meta(ctx, "sfneg", "scaling_factor", "-0.18", "scaling_factor");
    ok &= bad_meta(ctx, "sfnan", "scaling_factor", "nan", "scaling_factor");
    /* metadata that disagrees with the tensors: the weight binder names the tensor */
    ok &= bad_meta(ctx, "lpb2", "layers_per_block", "2", "resnets.2");
    ok &= bad_meta(ctx, "boc4", "block_out_channels", "16,32,32,32", "up_blocks.2.resnets.0.conv1");
    ok &= bad_meta(ctx, "g4", "norm_num_groups", "5", "divisible");
    ft_model_info info;
    ok &= ft_model_get_info(ctx, FT_ROLE_VAE, &info) == FT_OK && !info.loaded;
    ft_context_free(ctx);
    return ok ? PASS : FAIL;
}

/* ft_load + ft_model_get_info + ft_decode on the tiny VAE. */
TEST(vae_public_decode) {
    ft_context *ctx = cpu_context();
    golden g = {0};
    int ok = 0;
    if (ctx && golden_open(&g, "vae_tiny_forward.golden.safetensors")) {
        if (ft_load(ctx, FT_ROLE_VAE, test_data("vae_tiny.safetensors")) != FT_OK) {
            test_note("ft_load: %s", ft_last_error(ctx));
        } else {
            ft_model_info info;
            ok = ft_model_get_info(ctx, FT_ROLE_VAE, &info) == FT_OK && info.loaded && info.latent_channels == 4 &&
                 info.out_channels == 3 && info.upscale == 4 && fabsf(info.scaling_factor - 0.18215f) < 1e-7f &&
                 info.n_params > 0 && ft_decoded_size(ctx, 4) == 16;
            if (!ok) test_note("model info / decoded size wrong");
            float *lat = golden_get(&g, "in.latents", NULL), *rgbf = golden_get(&g, "rgb8", NULL);
            /* 6 images (more than ft_decode's chunk of 4): the golden pair three times */
            float lat6[6 * 64];
            uint8_t got[6 * 768], want[6 * 768];
            for (int r = 0; r < 3; r++) {
                memcpy(lat6 + r * 128, lat, 128 * 4);
                for (int i = 0; i < 2 * 768; i++) want[r * 1536 + i] = (uint8_t)rgbf[i];
            }
            ft_status st = ft_decode(ctx, lat6, 6, 4, got);
            if (st != FT_OK) test_note("ft_decode: %s", ft_last_error(ctx)), ok = 0;
            else ok &= rgb_match("ft_decode rgb8", got, want, sizeof got, 6);
            /* later calls reuse the context's decode buffers: 2 images (smaller), then 6 again */
            memset(got, 0, sizeof got);
            if (ft_decode(ctx, lat6, 2, 4, got) != FT_OK) test_note("ft_decode 2: %s", ft_last_error(ctx)), ok = 0;
            else ok &= rgb_match("ft_decode rgb8, second call", got, want, 2 * 768, 2);
            if (ft_decode(ctx, lat6, 6, 4, got) != FT_OK) test_note("ft_decode 6: %s", ft_last_error(ctx)), ok = 0;
            else ok &= rgb_match("ft_decode rgb8, third call", got, want, sizeof got, 6);
            free(lat), free(rgbf);
        }
    }
    golden_close(&g);
    ft_context_free(ctx);
    return ok ? PASS : FAIL;
}

/* ft_generate decodes with the VAE in its plan: the images equal ft_decode of its latents. */
TEST(vae_generate_with_vae_matches_decode) {
    ft_context *ctx = cpu_context();
    int ok = 0;
    if (ctx) {
        if (ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_a.safetensors")) != FT_OK ||
            ft_load(ctx, FT_ROLE_VAE, test_data("vae_tiny.safetensors")) != FT_OK) {
            test_note("load: %s", ft_last_error(ctx));
        } else {
            ft_output_shape sh;
            ok = ft_get_output_shape(ctx, &sh) == FT_OK && sh.can_make_images && sh.latent_size == 8 &&
                 sh.image_size == 32;
            if (!ok) test_note("output shape wrong");
            int labels[3] = {0, 3, 4};
            ft_generate_params gp;
            ft_generate_params_init(&gp);
            gp.num_images = 3;
            gp.labels = labels;
            gp.sampler = "heun:2";
            gp.cfg_scale = 2.0f;
            gp.batch_size = 2;
            float lat[3 * 4 * 64];
            uint8_t img[3 * 32 * 32 * 3], dec[3 * 32 * 32 * 3];
            if (ft_generate(ctx, &gp, lat, img) != FT_OK) {
                test_note("ft_generate: %s", ft_last_error(ctx));
                ok = 0;
            } else if (ft_decode(ctx, lat, 3, 8, dec) != FT_OK) {
                test_note("ft_decode: %s", ft_last_error(ctx));
                ok = 0;
            } else {
                ok &= rgb_match("generate vs decode", img, dec, sizeof img, 0);
                int lo = 255, hi = 0;
                for (size_t i = 0; i < sizeof img; i++) lo = img[i] < lo ? img[i] : lo, hi = img[i] > hi ? img[i] : hi;
                if (hi - lo < 16) test_note("images look constant (%d..%d)", lo, hi), ok = 0;
            }
        }
    }
    ft_context_free(ctx);
    return ok ? PASS : FAIL;
}

/* A VAE for 3 latent channels with a 4-channel predictor: ft_generate refuses images, latents still work. */
TEST(vae_latent_channel_mismatch_is_reported) {
    char path[512];
    snprintf(path, sizeof path, "%s/vae_latent3.safetensors", test_tmpdir());
    meta_kv e = {"latent_channels", "3"};
    if (!write_variant(test_data("vae_tiny.safetensors"), path, &e, 1, 3)) return FAIL;
    ft_context *ctx = cpu_context();
    int ok = 0;
    if (ctx) {
        if (ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_a.safetensors")) != FT_OK ||
            ft_load(ctx, FT_ROLE_VAE, path) != FT_OK) {
            test_note("load: %s", ft_last_error(ctx));
        } else {
            int labels[1] = {1};
            ft_generate_params gp;
            ft_generate_params_init(&gp);
            gp.labels = labels;
            gp.sampler = "euler:2";
            gp.cfg_scale = 1.0f;
            float lat[4 * 64];
            uint8_t img[32 * 32 * 3];
            ft_status st = ft_generate(ctx, &gp, lat, img);
            const char *msg = ft_last_error(ctx);
            ok = st == FT_ERR_INVALID_ARGUMENT && strstr(msg, "3 latent channels") && strstr(msg, "4");
            if (!ok) test_note("ft_generate: status %s, message '%s'", ft_status_string(st), msg);
            st = ft_generate(ctx, &gp, lat, NULL);
            if (st != FT_OK) test_note("latents only: %s", ft_last_error(ctx)), ok = 0;
            /* the 3-channel VAE itself decodes 3-channel latents */
            float z[2 * 3 * 16];
            fill(z, sizeof z / sizeof z[0], 5);
            uint8_t rgb[2 * 16 * 16 * 3];
            if (ft_decode(ctx, z, 2, 4, rgb) != FT_OK) test_note("decode 3ch: %s", ft_last_error(ctx)), ok = 0;
        }
    }
    ft_context_free(ctx);
    return ok ? PASS : FAIL;
}
