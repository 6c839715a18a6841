/* tests/test_sampler.c — sampler configs, the time grid, and whole
 * trajectories through the public API against the PyTorch reference
 * (tests/data/sampler_{a,b,c}.golden.safetensors; c: shifted time grids and
 * the guided refiner kind of issue 12). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../engine/sampler.h"
#include "test.h"

TEST(sampler_parse_valid) {
    struct {
        const char *text, *name;
        int steps, pred, ref;
    } cases[] = {
        {"H1P5R3", "H1P5R3", 9, 7, 6},  {"h8p9r5", "H8P9R5", 22, 25, 10}, {"heun:8", "heun:8", 8, 16, 0},
        {"euler:50", "euler:50", 50, 50, 0}, {"H8", "heun:8", 8, 16, 0}, {"H2P4", "H2P4R0", 6, 8, 0},
        {"H0P3R2", "H0P3R2", 5, 4, 4}, {"P2R1", "H0P2R1", 3, 3, 2},  {"H2R1", "H2P0R1", 3, 4, 2},
        {"heun:8/s2", "heun:8/s2", 8, 16, 0}, {"H2P4R2/s1.5", "H2P4R2/s1.5", 8, 8, 4},
        {"euler:8/s1", "euler:8", 8, 8, 0},   {"h1p5r3/s0.25", "H1P5R3/s0.25", 9, 7, 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ft_sampler_cfg c;
        ft_err err;
        CHECK(sampler_parse(cases[i].text, &c, &err) == FT_OK, "%s: %s", cases[i].text, err.msg);
        CHECK(strcmp(c.name, cases[i].name) == 0, "%s parsed as %s", cases[i].text, c.name);
        CHECK(c.steps == cases[i].steps, "%s: %d steps", cases[i].text, c.steps);
        CHECK(sampler_predictor_calls(&c) == cases[i].pred && sampler_refiner_calls(&c) == cases[i].ref,
              "%s: %d/%d calls", cases[i].text, sampler_predictor_calls(&c), sampler_refiner_calls(&c));
        /* the public description: a released refiner makes two calls per R step, a guided one one */
        ft_sampler_info info;
        CHECK(ft_sampler_describe(cases[i].text, &info, NULL, 0) == FT_OK && info.predictor_calls == cases[i].pred &&
                  info.refiner_calls == cases[i].ref && info.guided_refiner_calls == cases[i].ref / 2,
              "%s: described %d/%d/%d calls", cases[i].text, info.predictor_calls, info.refiner_calls,
              info.guided_refiner_calls);
    }
    return PASS;
}

TEST(sampler_parse_rejects_with_reason) {
    struct {
        const char *text, *reason;
    } cases[] = {
        {"", "empty"},           {"R3", "at least one H or P"}, {"H0P0R2", "at least one H or P"},
        {"H0", "zero steps"},    {"euler:0", "zero steps"},     {"heun:", "step count"},
        {"dpm:10", "unknown"},   {"H1X2", "unknown"},            {"R1H2", "order"},
        {"H1H2", "order"},       {"H", "block count"},           {"euler:5x", "step count"},
        {"H999P999", "more than"}, {"euler:-3", "step count"},
        {"heun:8/s0", "grid shift"}, {"heun:8/s", "grid shift"},   {"heun:8/x2", "grid shift"},
        {"heun:8/s2x", "grid shift"}, {"heun:8/s101", "grid shift"}, {"/s2", "nothing before"},
        {"heun:8/s-1", "grid shift"}, {"heun:8/snan", "grid shift"}, {"heun:0/s2", "zero steps"},
        {"heun:8/s ", "grid shift"}, {"euler:4/s\t2", "grid shift"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ft_sampler_cfg c;
        ft_err err = {{0}};
        ft_status st = sampler_parse(cases[i].text, &c, &err);
        CHECK(st == FT_ERR_INVALID_ARGUMENT, "'%s' accepted", cases[i].text);
        CHECK(strstr(err.msg, cases[i].reason) != NULL, "'%s': message '%s' lacks '%s'", cases[i].text, err.msg,
              cases[i].reason);
    }
    CHECK(ft_sampler_check(NULL, "H1P5R3") == FT_OK, "public check rejects a valid string");
    return PASS;
}

TEST(sampler_near_miss_suggestions) {
    static const struct {
        const char *text, *suggestion; /* NULL: the valid forms but no guess */
    } cases[] = {
        {"heun", "heun:8"},      {"Heun 4", "heun:4"},     {"huen:6", "heun:6"},   {"euler", "euler:50"},
        {"eulr-20", "euler:20"}, {"heun:", "heun:8"},      {"R3H1P5", "H1P5R3"},   {"h1-p5-r3", "H1P5R3"},
        {"P2 H1", "H1P2R0"},     {"R1H2", "H2P0R1"},       {"dpm:10", NULL},       {"H1X2", NULL},
        {"H1H2", NULL},          {"H999P999", NULL},       {"R3", NULL},           {"flowturbo", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ft_sampler_cfg c;
        ft_err err = {{0}};
        CHECK(sampler_parse(cases[i].text, &c, &err) == FT_ERR_INVALID_ARGUMENT, "'%s' accepted", cases[i].text);
        CHECK(strstr(err.msg, "H<a>P<b>R<c>") && strstr(err.msg, "heun:N") && strstr(err.msg, "euler:N"),
              "'%s': no valid forms in '%s'", cases[i].text, err.msg);
        const char *guess = strstr(err.msg, "did you mean '");
        char want[64] = "";
        if (cases[i].suggestion) snprintf(want, sizeof want, "did you mean '%s'?", cases[i].suggestion);
        CHECK(cases[i].suggestion ? guess && strcmp(guess, want) == 0 : !guess, "'%s': '%s' (want '%s')",
              cases[i].text, err.msg, want);
    }
    char msg[512];
    ft_sampler_info info;
    CHECK(ft_sampler_describe("Heun", &info, msg, sizeof msg) == FT_ERR_INVALID_ARGUMENT &&
              strstr(msg, "did you mean 'heun:8'?"), "public describe: %s", msg);
    return PASS;
}

/* torch.linspace(0, 1, n) values read off torch's scalar formula. */
TEST(sampler_time_grid_matches_torch) {
    float t3[4], t2[3], t1[2], t22[23];
    sampler_time_grid(3, t3);
    sampler_time_grid(2, t2);
    sampler_time_grid(1, t1);
    sampler_time_grid(22, t22);
    CHECK(t3[1] == 0x1.555556p-2f && t3[2] == 0x1.555554p-1f && t3[3] == 1.0f, "N=3 grid %a %a", t3[1], t3[2]);
    CHECK(t2[1] == 0.5f && t2[2] == 1.0f && t1[0] == 0.0f && t1[1] == 1.0f, "N=2/N=1 grid");
    /* second half counts down from 1: t[N-1] = 1 - step exactly */
    CHECK(t22[21] == 1.0f - 1.0f / 22.0f && t22[0] == 0.0f && t22[22] == 1.0f, "N=22 grid ends %a", t22[21]);
    for (int i = 0; i < 22; i++) CHECK(t22[i] < t22[i + 1], "grid not increasing at %d", i);
    return PASS;
}

/* The shifted grid: t_i = F u / (1 + (F - 1) u) (computed independently here), ends at exactly 0 and 1, steps
 * h_k = t[k+1] - t[k] shrinking towards t = 1 for F > 1; F = 1 is the released grid with one h = 1/N. */
TEST(sampler_shifted_grid) {
    ft_sampler_cfg c;
    float t[12], h[11], u[12];
    CHECK(sampler_parse("heun:11/s3", &c, NULL) == FT_OK && c.shift == 3.0f, "parse");
    sampler_grid(&c, t, h);
    CHECK(t[0] == 0.0f && t[11] == 1.0f, "ends %a %a", t[0], t[11]);
    for (int i = 0; i <= 11; i++) {
        double v = (double)i / 11;
        CHECK(fabs(t[i] - 3 * v / (1 + 2 * v)) < 1e-6, "t[%d] = %.8f", i, t[i]);
    }
    for (int k = 0; k < 11; k++) {
        CHECK(h[k] == t[k + 1] - t[k], "h[%d]", k);
        if (k) CHECK(h[k] < h[k - 1], "steps do not shrink towards t = 1 at %d", k);
    }
    CHECK(sampler_parse("H1P5R3", &c, NULL) == FT_OK && c.shift == 1.0f, "uniform");
    sampler_grid(&c, t, h);
    sampler_time_grid(9, u);
    for (int i = 0; i <= 9; i++) CHECK(t[i] == u[i], "uniform grid differs at %d", i);
    for (int k = 0; k < 9; k++) CHECK(h[k] == 1.0f / 9.0f, "uniform h[%d] = %a", k, h[k]);
    return PASS;
}

typedef struct {
    ft_context *ctx;
    golden g;
} sampler_fixture;

static int open_models(sampler_fixture *fx, const char *golden_name, const char *pred, const char *ref) {
    memset(fx, 0, sizeof *fx);
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = 2;
    fx->ctx = ft_context_new(&cp);
    if (!fx->ctx) return 0;
    if (ft_load(fx->ctx, FT_ROLE_PREDICTOR, test_data(pred)) != FT_OK ||
        (ref && ft_load(fx->ctx, FT_ROLE_REFINER, test_data(ref)) != FT_OK)) {
        test_note("%s", ft_last_error(fx->ctx));
        return 0;
    }
    return golden_open(&fx->g, golden_name);
}

static void close_models(sampler_fixture *fx) {
    golden_close(&fx->g);
    ft_context_free(fx->ctx);
}

/* Runs one "<sampler>@<cfg>" case at batch sizes 3 and 1 against out. / out1. */
static int run_case(sampler_fixture *fx, const char *prefix, const char *spec, int n_images) {
    char sampler[32];
    float cfg;
    const char *at = strchr(spec, '@');
    if (!at || (size_t)(at - spec) >= sizeof sampler) return 0;
    memcpy(sampler, spec, (size_t)(at - spec));
    sampler[at - spec] = 0;
    cfg = strtof(at + 1, NULL);
    size_t nn = 0;
    float *noise = golden_get(&fx->g, "noise", &nn), *labf = golden_get(&fx->g, "labels", NULL);
    int labels[8], ok = noise && labf;
    for (int i = 0; ok && i < n_images; i++) labels[i] = (int)labf[i];
    size_t state = nn / (size_t)n_images;
    for (int pass = 0; ok && pass < 2; pass++) {
        int n = pass == 0 ? n_images : 1;
        char name[96];
        snprintf(name, sizeof name, "%s%s%s", pass == 0 ? "out." : "out1.", prefix, spec);
        float *want = golden_get(&fx->g, name, NULL), *got = malloc(n * state * 4);
        ft_generate_params gp;
        ft_generate_params_init(&gp);
        gp.num_images = n;
        gp.labels = labels;
        gp.noise = noise;
        gp.sampler = sampler;
        gp.cfg_scale = cfg;
        gp.batch_size = n;
        ft_status st = want ? ft_generate(fx->ctx, &gp, got, NULL) : FT_ERR_INTERNAL;
        double err = st == FT_OK ? rel_l2(got, want, n * state) : 1e30;
        if (st != FT_OK) test_note("%s: %s", name, ft_last_error(fx->ctx));
        else if (!(err <= 1e-5)) test_note("%s: rel L2 %.3g > 1e-5", name, err);
        ok &= st == FT_OK && err <= 1e-5;
        free(want);
        free(got);
    }
    free(noise);
    free(labf);
    return ok;
}

static test_result run_cases(const char *golden_name, const char *pred, const char *ref, const char *meta_key,
                             const char *prefix, int n_images) {
    sampler_fixture fx;
    test_result r = FAIL;
    if (open_models(&fx, golden_name, pred, ref)) {
        const char *list = st_meta(&fx.g.f, meta_key);
        char buf[512];
        snprintf(buf, sizeof buf, "%s", list ? list : "");
        int ok = list != NULL, count = 0;
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            ok &= run_case(&fx, prefix, tok, n_images);
            count++;
        }
        r = ok && count > 0 ? PASS : FAIL;
    }
    close_models(&fx);
    return r;
}

/* FlowTurbo H/P/R (incl. N_P = 0, N_R = 0, N_H = 0), Euler, Heun; guidance on
 * and off; 3-of-4-channel guidance; batch sizes 3 and 1. */
TEST(sampler_golden_latent_model_with_refiner) {
    return run_cases("sampler_a.golden.safetensors", "sit_a.safetensors", "sit_a_refiner.safetensors", "cases", "", 3);
}

/* guided_channels = 4 (standard all-channel CFG) from the predictor's metadata. */
TEST(sampler_golden_all_channel_guidance) {
    return run_cases("sampler_a.golden.safetensors", "sit_a_g4.safetensors", "sit_a_refiner.safetensors", "cases_g4",
                     "g4.", 3);
}

TEST(sampler_golden_pixel_model) {
    return run_cases("sampler_b.golden.safetensors", "sit_b.safetensors", NULL, "cases", "", 3);
}

/* Shifted grids for Euler, Heun and H/P/R (released refiner), F > 1 and < 1. */
TEST(sampler_golden_shifted_grid) {
    return run_cases("sampler_c.golden.safetensors", "sit_a.safetensors", "sit_a_refiner.safetensors", "cases", "", 3);
}

/* refiner_kind "guided": one refiner call per R step on the B guided rows, no combine; guided and unguided,
 * 3-of-4-channel guidance (the carried velocity's cond rows), N_H = 0 and a shifted grid. */
TEST(sampler_golden_guided_refiner) {
    return run_cases("sampler_c.golden.safetensors", "sit_a.safetensors", "sit_a_refiner_guided.safetensors",
                     "cases_guided", "guided.", 3);
}

/* An unknown refiner_kind is refused at load with the value named. */
TEST(sampler_guided_refiner_kind_checked) {
    size_t n;
    unsigned char *buf = test_read_file(test_data("sit_a_refiner_guided.safetensors"), &n);
    CHECK(buf != NULL && n > 8, "fixture missing (size %zu)", n);
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    ft_context *ctx = ft_context_new(&cp);
    CHECK(ctx && ft_load_memory(ctx, FT_ROLE_REFINER, buf, n, "guided") == FT_OK, "good file: %s", ft_last_error(ctx));
    unsigned char *hit = NULL;
    for (size_t i = 0; !hit && i + 8 <= n; i++)
        if (!memcmp(buf + i, "\"guided\"", 8)) hit = buf + i;
    CHECK(hit != NULL, "no refiner_kind in the fixture's header");
    memcpy(hit, "\"guixed\"", 8);
    ft_status st = ft_load_memory(ctx, FT_ROLE_REFINER, buf, n, "bad");
    int ok = st == FT_ERR_FORMAT && strstr(ft_last_error(ctx), "unknown refiner_kind 'guixed'");
    if (!ok) test_note("status %d: %s", st, ft_last_error(ctx));
    ft_context_free(ctx);
    free(buf);
    return ok ? PASS : FAIL;
}

/* Network calls per trajectory agree with what the reference counted. */
static int nfe_cases(const char *golden_name, const char *list_key, const char *prefix, int refine_once) {
    golden g;
    if (!golden_open(&g, golden_name)) return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", st_meta(&g.f, list_key) ? st_meta(&g.f, list_key) : "");
    int ok = buf[0] != 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char key[64], sampler[32];
        snprintf(key, sizeof key, "nfe.%s%s", prefix, tok);
        const char *want = st_meta(&g.f, key);
        snprintf(sampler, sizeof sampler, "%.*s", (int)(strchr(tok, '@') - tok), tok);
        ft_sampler_cfg c;
        ok &= want && sampler_parse(sampler, &c, NULL) == FT_OK;
        c.refine_once = refine_once;
        char got[32];
        snprintf(got, sizeof got, "%d,%d", sampler_predictor_calls(&c), sampler_refiner_calls(&c));
        if (!want || strcmp(got, want)) {
            test_note("%s: engine %s, reference %s", tok, got, want ? want : "?");
            ok = 0;
        }
        ft_sampler_info info; /* ft_sampler_describe gives the count of each refiner kind */
        ok &= ft_sampler_describe(sampler, &info, NULL, 0) == FT_OK;
        snprintf(got, sizeof got, "%d,%d", info.predictor_calls,
                 refine_once ? info.guided_refiner_calls : info.refiner_calls);
        if (!want || strcmp(got, want)) {
            test_note("%s: ft_sampler_describe %s, reference %s", tok, got, want ? want : "?");
            ok = 0;
        }
    }
    golden_close(&g);
    return ok;
}

TEST(sampler_nfe_matches_reference) {
    int ok = nfe_cases("sampler_a.golden.safetensors", "cases", "", 0);
    ok &= nfe_cases("sampler_c.golden.safetensors", "cases", "", 0);
    ok &= nfe_cases("sampler_c.golden.safetensors", "cases_guided", "guided.", 1);
    return ok ? PASS : FAIL;
}
