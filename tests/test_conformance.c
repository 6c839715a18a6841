/* tests/test_conformance.c — the engine against vectors produced by the
 * authors' own released code (shiml20/FlowTurbo models_assemble.py, fp32):
 * tests/data/conformance/ holds their tiny checkpoints (converted to the
 * engine format by weights_tool/convert.py), the noise, labels and the final
 * latents of their sampler for each case of manifest.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../host/npy.h"
#include "test.h"

static float *load_f32(const char *name, size_t *n) {
    npy_array a;
    hx_err err;
    if (npy_load(test_data(name), &a, &err) != 0) {
        test_note("%s", err.msg);
        return NULL;
    }
    *n = a.h.numel;
    if (a.h.dtype == NPY_F32) return a.data;
    float *f = malloc(a.h.numel * sizeof *f + 1);
    for (uint64_t i = 0; i < a.h.numel; i++)
        f[i] = a.h.dtype == NPY_I64 ? (float)((int64_t *)a.data)[i] : (float)((uint8_t *)a.data)[i];
    npy_free(&a);
    return f;
}

/* The authors' predictor (depth 28, patch 4, 7 classes) + refiner ("model"
 * weights) for H1P5R3, H2P0R1 and H3P2R0 at guidance 1.5 and 4.0. */
TEST(conformance_authors_sampler) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = 2;
    ft_context *ctx = ft_context_new(&cp);
    int ok = ft_load(ctx, FT_ROLE_PREDICTOR, test_data("conformance/predictor.safetensors")) == FT_OK &&
             ft_load(ctx, FT_ROLE_REFINER, test_data("conformance/refiner.safetensors")) == FT_OK;
    if (!ok) test_note("%s", ft_last_error(ctx));
    size_t nn = 0, nl = 0;
    float *noise = load_f32("conformance/noise.npy", &nn), *labf = load_f32("conformance/labels.npy", &nl);
    ok &= noise && labf && nl == 2 && nn == 2 * 4 * 16 * 16;
    int labels[2] = {labf ? (int)labf[0] : 0, labf ? (int)labf[1] : 0};
    const char *cases[] = {"H1P5R3", "H2P0R1", "H3P2R0"};
    const float scales[] = {1.5f, 4.0f};
    for (int c = 0; ok && c < 3; c++)
        for (int s = 0; s < 2; s++) {
            char name[96];
            snprintf(name, sizeof name, "conformance/out_%s_cfg%.1f.npy", cases[c], scales[s]);
            size_t n = 0;
            float *want = load_f32(name, &n), got[2 * 4 * 16 * 16];
            ft_generate_params gp;
            ft_generate_params_init(&gp);
            gp.num_images = 2, gp.labels = labels, gp.noise = noise, gp.sampler = cases[c], gp.cfg_scale = scales[s];
            ft_status st = want && n == nn ? ft_generate(ctx, &gp, got, NULL) : FT_ERR_INTERNAL;
            double e = st == FT_OK ? rel_l2(got, want, n) : 1e30;
            if (st != FT_OK) test_note("%s: %s", name, ft_last_error(ctx));
            else test_note("%s: rel L2 %.2e", name, e);
            ok &= st == FT_OK && e <= 1e-5;
            free(want);
        }
    free(noise);
    free(labf);
    ft_context_free(ctx);
    return ok ? PASS : FAIL;
}
