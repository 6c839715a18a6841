/* tests/test_sit.c — every transformer op of the CPU backend and whole
 * forward passes against the PyTorch reference's intermediates
 * (tests/data/<model>_forward.golden.safetensors, see tests/reference). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/sit.h"
#include "test.h"

#define TOL 1e-5

typedef struct {
    ft_backend *be;
    st_file file;
    sit_model m;
    golden g;
    int ok;
} fixture;

static int fixture_open(fixture *fx, const char *model, ft_role role, const char *golden_name) {
    memset(fx, 0, sizeof *fx);
    char e[256];
    ft_err err;
    fx->be = ft_backend_cpu_create(1, e, sizeof e);
    if (!fx->be) {
        test_note("cpu backend: %s", e);
        return 0;
    }
    if (st_open(&fx->file, test_data(model), &err) != FT_OK || sit_load(fx->be, &fx->file, role, &fx->m, NULL, NULL, &err) != FT_OK) {
        test_note("%s", err.msg);
        return 0;
    }
    if (!golden_open(&fx->g, golden_name)) return 0;
    fx->ok = 1;
    return 1;
}

static void fixture_close(fixture *fx) {
    golden_close(&fx->g);
    if (fx->m.arena) sit_free(fx->be, &fx->m);
    if (fx->file.base) st_close(&fx->file);
    if (fx->be) fx->be->destroy(fx->be);
}

/* Compares n floats against golden tensor `name`; notes the error. */
static int matches(fixture *fx, const char *name, const float *got, size_t n) {
    size_t gn = 0;
    float *want = golden_get(&fx->g, name, &gn);
    if (!want) return 0;
    double err = gn == n ? rel_l2(got, want, n) : 1e30;
    free(want);
    if (gn != n) test_note("%s: %zu elements, golden has %zu", name, n, gn);
    else if (!(err <= TOL) || !all_finite(got, n)) test_note("%s: rel L2 %.3g > %.0e", name, err, TOL);
    return gn == n && err <= TOL && all_finite(got, n);
}

static float *get(fixture *fx, const char *name) { return golden_get(&fx->g, name, NULL); }

/* Labels of the golden rows as int32. */
static int32_t *labels_of(fixture *fx, int N) {
    float *y = get(fx, "in.y");
    int32_t *l = malloc((size_t)N * sizeof *l);
    for (int i = 0; y && i < N; i++) l[i] = (int32_t)y[i];
    free(y);
    return l;
}

TEST(sit_op_timestep_embedding) {
    fixture fx;
    test_result r = FAIL;
    if (fixture_open(&fx, "sit_a.safetensors", FT_ROLE_PREDICTOR, "sit_a_forward.golden.safetensors")) {
        float *t = get(&fx, "in.t"), out[3 * 256];
        fx.be->timestep_embedding(fx.be, out, t, 3, 256);
        r = matches(&fx, "t_freq", out, sizeof out / sizeof out[0]) ? PASS : FAIL;
        free(t);
    }
    fixture_close(&fx);
    return r;
}

/* t-MLP (linear + SiLU epilogue, linear), label lookup, SiLU, adaLN GEMM. */
TEST(sit_op_conditioning_chain) {
    fixture fx;
    test_result r = FAIL;
    if (fixture_open(&fx, "sit_a.safetensors", FT_ROLE_PREDICTOR, "sit_a_forward.golden.safetensors")) {
        ft_backend *be = fx.be;
        const sit_config *c = &fx.m.cfg;
        int N = 3, D = c->hidden;
        float *freq = get(&fx, "t_freq"), *hid = malloc(N * D * 4), *temb = malloc(N * D * 4);
        float *mod = malloc((size_t)N * c->mod_width * 4);
        int32_t *labels = labels_of(&fx, N);
        be->linear(be, hid, FT_BUF_ACT, freq, fx.m.t_w0, fx.m.t_b0, N, D, 256, FT_EPI_SILU);
        be->linear(be, temb, FT_BUF_F32, hid, fx.m.t_w2, fx.m.t_b2, N, D, D, FT_EPI_NONE);
        int ok = matches(&fx, "t_emb", temb, (size_t)N * D);
        be->embedding_lookup(be, temb, fx.m.y_table, labels, N, D, 1);
        ok &= matches(&fx, "c", temb, (size_t)N * D);
        be->silu(be, temb, temb, (size_t)N * D);
        ok &= matches(&fx, "silu_c", temb, (size_t)N * D);
        be->linear(be, mod, FT_BUF_F32, temb, fx.m.ada_w, fx.m.ada_b, N, c->mod_width, D, FT_EPI_NONE);
        for (int b = 0; b <= c->depth; b++) {
            int width = b < c->depth ? 6 * D : 2 * D;
            float *rows = malloc((size_t)N * width * 4);
            for (int n = 0; n < N; n++)
                memcpy(rows + (size_t)n * width, mod + (size_t)n * c->mod_width + (size_t)b * 6 * D, width * 4);
            char name[32];
            if (b < c->depth) snprintf(name, sizeof name, "mod.block%d", b);
            else snprintf(name, sizeof name, "mod.final");
            ok &= matches(&fx, name, rows, (size_t)N * width);
            free(rows);
        }
        /* the composed sit_condition must agree with the op chain */
        sit_cond_scratch s = {malloc(N * 256 * 4), malloc(N * D * 4), malloc(N * 256 * 4), malloc(N * D * 4),
                              malloc(N * D * 4)};
        float *t = get(&fx, "in.t"), *mod2 = malloc((size_t)N * c->mod_width * 4);
        sit_condition(be, &fx.m, &s, t, labels, N, mod2);
        ok &= rel_l2(mod2, mod, (size_t)N * c->mod_width) <= 1e-6;
        free(s.freq), free(s.temb), free(s.freq_act), free(s.t_hidden), free(s.c_act), free(t), free(mod2);
        free(freq), free(hid), free(temb), free(mod), free(labels);
        r = ok ? PASS : FAIL;
    }
    fixture_close(&fx);
    return r;
}

static test_result patch_embed_case(const char *model, ft_role role, const char *golden_name) {
    fixture fx;
    test_result r = FAIL;
    if (fixture_open(&fx, model, role, golden_name)) {
        const sit_config *c = &fx.m.cfg;
        int N = 3;
        float *x = get(&fx, "in.x"), *v = c->is_refiner ? get(&fx, "in.v") : NULL;
        size_t n = (size_t)N * c->tokens * c->hidden;
        float *tok = malloc(n * 4);
        fx.be->patch_embed(fx.be, tok, x, c->in_channels, N, v, c->is_refiner ? c->in_channels : 0, fx.m.patch_w,
                           fx.m.patch_b, fx.m.pos, N, c->input_size, c->patch, c->hidden);
        r = matches(&fx, "x_embed", tok, n) ? PASS : FAIL;
        free(x), free(v), free(tok);
    }
    fixture_close(&fx);
    return r;
}

TEST(sit_op_patch_embed) { return patch_embed_case("sit_a.safetensors", FT_ROLE_PREDICTOR, "sit_a_forward.golden.safetensors"); }
TEST(sit_op_patch_embed_refiner_concat) {
    return patch_embed_case("sit_a_refiner.safetensors", FT_ROLE_REFINER, "sit_a_refiner_forward.golden.safetensors");
}
TEST(sit_op_patch_embed_patch4_pixels) {
    return patch_embed_case("sit_b.safetensors", FT_ROLE_PREDICTOR, "sit_b_forward.golden.safetensors");
}

/* Block 0 of sit_a, op by op, each op fed the golden input of its stage. */
TEST(sit_op_block_ops) {
    fixture fx;
    test_result r = FAIL;
    if (fixture_open(&fx, "sit_a.safetensors", FT_ROLE_PREDICTOR, "sit_a_forward.golden.safetensors")) {
        ft_backend *be = fx.be;
        const sit_config *c = &fx.m.cfg;
        const sit_block_weights *w = &fx.m.blocks[0];
        int N = 3, T = c->tokens, D = c->hidden, F = c->mlp_hidden, rows = N * T;
        size_t nd = (size_t)rows * D;
        float *mod = get(&fx, "mod.block0"), *x = get(&fx, "x_embed");
        float *h = malloc(nd * 4), *qkv = malloc(nd * 3 * 4), *att = malloc(nd * 4), *a = malloc(nd * 4);
        float *fc1 = malloc((size_t)rows * F * 4);
        float *mod1 = get(&fx, "mod.block1");
        int stride = 6 * D, ok = 1;
        /* next-block modulation rows interleaved as the engine lays them out */
        be->layernorm_modulate(be, h, x, mod, mod + D, stride, N, T, D, SIT_LN_EPS);
        ok &= matches(&fx, "block0.h1", h, nd);
        float *g_h1 = get(&fx, "block0.h1");
        be->linear(be, qkv, FT_BUF_ACT, g_h1, w->qkv_w, w->qkv_b, rows, 3 * D, D, FT_EPI_NONE);
        ok &= matches(&fx, "block0.qkv", qkv, nd * 3);
        float *g_qkv = get(&fx, "block0.qkv");
        be->attention(be, att, g_qkv, N, T, c->heads, c->head_dim);
        ok &= matches(&fx, "block0.attn", att, nd);
        float *g_att = get(&fx, "block0.attn");
        be->linear(be, a, FT_BUF_ACT, g_att, w->proj_w, w->proj_b, rows, D, D, FT_EPI_NONE);
        ok &= matches(&fx, "block0.proj", a, nd);
        float *g_proj = get(&fx, "block0.proj");
        be->gated_residual(be, x, g_proj, mod + 2 * D, h, mod + 3 * D, mod + 4 * D, stride, N, T, D, SIT_LN_EPS);
        ok &= matches(&fx, "block0.x_mid", x, nd);
        ok &= matches(&fx, "block0.h2", h, nd);
        float *g_h2 = get(&fx, "block0.h2");
        be->linear(be, fc1, FT_BUF_ACT, g_h2, w->fc1_w, w->fc1_b, rows, F, D, FT_EPI_GELU_TANH);
        ok &= matches(&fx, "block0.fc1", fc1, (size_t)rows * F);
        float *g_fc1 = get(&fx, "block0.fc1");
        be->linear(be, a, FT_BUF_ACT, g_fc1, w->fc2_w, w->fc2_b, rows, D, F, FT_EPI_NONE);
        ok &= matches(&fx, "block0.fc2", a, nd);
        float *g_fc2 = get(&fx, "block0.fc2"), *g_mid = get(&fx, "block0.x_mid");
        be->gated_residual(be, g_mid, g_fc2, mod + 5 * D, h, mod1, mod1 + D, stride, N, T, D, SIT_LN_EPS);
        ok &= matches(&fx, "block0.out", g_mid, nd);
        ok &= matches(&fx, "block1.h1", h, nd);
        free(mod), free(x), free(h), free(qkv), free(att), free(a), free(fc1), free(mod1);
        free(g_h1), free(g_qkv), free(g_att), free(g_proj), free(g_h2), free(g_fc1), free(g_fc2), free(g_mid);
        r = ok ? PASS : FAIL;
    }
    fixture_close(&fx);
    return r;
}

/* Final layer: LN + modulate, linear, unpatchify with the learn_sigma chunk. */
TEST(sit_op_final_layer_unpatchify) {
    fixture fx;
    test_result r = FAIL;
    if (fixture_open(&fx, "sit_a.safetensors", FT_ROLE_PREDICTOR, "sit_a_forward.golden.safetensors")) {
        ft_backend *be = fx.be;
        const sit_config *c = &fx.m.cfg;
        int N = 3, T = c->tokens, D = c->hidden, rows = N * T;
        float *mod = get(&fx, "mod.final"), *x = get(&fx, "block1.out");
        float *h = malloc((size_t)rows * D * 4), *fo = malloc((size_t)rows * c->final_out * 4);
        size_t nout = (size_t)N * c->in_channels * c->input_size * c->input_size;
        float *out = malloc(nout * 4);
        be->layernorm_modulate(be, h, x, mod, mod + D, 2 * D, N, T, D, SIT_LN_EPS);
        int ok = matches(&fx, "final.h", h, (size_t)rows * D);
        be->linear(be, fo, FT_BUF_ACT, h, fx.m.final_w, fx.m.final_b, rows, c->final_out, D, FT_EPI_NONE);
        ok &= matches(&fx, "final.linear", fo, (size_t)rows * c->final_out);
        be->unpatchify(be, out, fo, N, c->input_size, c->patch, c->out_channels, c->in_channels);
        ok &= matches(&fx, "out", out, nout);
        free(mod), free(x), free(h), free(fo), free(out);
        r = ok ? PASS : FAIL;
    }
    fixture_close(&fx);
    return r;
}

/* Whole network: sit_condition + sit_forward vs the golden output. */
static test_result forward_case(const char *model, ft_role role, const char *golden_name) {
    fixture fx;
    test_result r = FAIL;
    if (fixture_open(&fx, model, role, golden_name)) {
        ft_backend *be = fx.be;
        const sit_config *c = &fx.m.cfg;
        int N = 3;
        sit_scratch s;
        sit_cond_scratch cs;
        void *scratch = NULL;
        if (sit_scratch_alloc(be, c, N, N, &s, &cs, &scratch) != FT_OK) exit(1);
        float *t = get(&fx, "in.t"), *x = get(&fx, "in.x"), *v = c->is_refiner ? get(&fx, "in.v") : NULL;
        int32_t *labels = labels_of(&fx, N);
        float *mod = malloc((size_t)N * c->mod_width * 4);
        size_t nout = (size_t)N * c->in_channels * c->input_size * c->input_size;
        /* guard floats after the output catch out-of-bounds writes */
        float *out = malloc((nout + 16) * 4);
        for (int i = 0; i < 16; i++) out[nout + i] = 1234.5f;
        sit_condition(be, &fx.m, &cs, t, labels, N, mod);
        sit_forward(be, &fx.m, &s, x, N, v, mod, N, out);
        int ok = matches(&fx, "out", out, nout) && be->sync(be) == FT_OK;
        for (int i = 0; i < 16; i++) ok &= out[nout + i] == 1234.5f;
        be->free(be, scratch);
        free(t), free(x), free(v), free(labels), free(mod), free(out);
        r = ok ? PASS : FAIL;
    }
    fixture_close(&fx);
    return r;
}

TEST(sit_forward_predictor_learn_sigma) {
    return forward_case("sit_a.safetensors", FT_ROLE_PREDICTOR, "sit_a_forward.golden.safetensors");
}
TEST(sit_forward_refiner) {
    return forward_case("sit_a_refiner.safetensors", FT_ROLE_REFINER, "sit_a_refiner_forward.golden.safetensors");
}
TEST(sit_forward_pixel_patch4_mlp2_5) {
    return forward_case("sit_b.safetensors", FT_ROLE_PREDICTOR, "sit_b_forward.golden.safetensors");
}

/* The x_batch duplication: rows n read x[n % B] (the CFG trick of the released code). */
TEST(sit_forward_duplicated_input_rows) {
    fixture fx;
    test_result r = FAIL;
    if (fixture_open(&fx, "sit_a.safetensors", FT_ROLE_PREDICTOR, "sit_a_forward.golden.safetensors")) {
        ft_backend *be = fx.be;
        const sit_config *c = &fx.m.cfg;
        int N = 2;
        sit_scratch s;
        sit_cond_scratch cs;
        void *scratch = NULL;
        if (sit_scratch_alloc(be, c, N, N, &s, &cs, &scratch) != FT_OK) exit(1);
        float *x = get(&fx, "in.x"), t[2] = {0.25f, 0.25f};
        int32_t labels[2] = {1, 5};
        float *mod = malloc((size_t)N * c->mod_width * 4);
        size_t state = (size_t)c->in_channels * c->input_size * c->input_size;
        float *dup = malloc(2 * state * 4), *one = malloc(2 * state * 4), *x2 = malloc(2 * state * 4);
        memcpy(x2, x, state * 4);
        memcpy(x2 + state, x, state * 4);
        sit_condition(be, &fx.m, &cs, t, labels, N, mod);
        sit_forward(be, &fx.m, &s, x, 1, NULL, mod, N, dup);  /* x_batch 1: both rows read x[0] */
        sit_forward(be, &fx.m, &s, x2, 2, NULL, mod, N, one); /* explicit copy */
        int ok = rel_l2(dup, one, 2 * state) == 0.0 && rel_l2(dup, dup + state, state) > 1e-3;
        be->free(be, scratch);
        free(x), free(mod), free(dup), free(one), free(x2);
        if (!ok) test_note("rows reading x[n %% B] differ from explicitly duplicated input");
        r = ok ? PASS : FAIL;
    }
    fixture_close(&fx);
    return r;
}
