/* tests/test_nonfinite.c — NaN and Inf never pass silently: weights holding
 * them are refused at load (library, info, generate, sample-fid), noise and
 * latents holding them are refused as arguments, and a computation that
 * overflows during sampling or decoding fails with the batch and the step
 * instead of writing black images or a valid-looking npz. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/finite.h"
#include "../engine/flowturbo.h"
#include "../engine/safetensors.h"
#include "test.h"

static char out[65536];
#define cli(...) test_cli_run(out, sizeof out, __VA_ARGS__)
#define tmp(name) test_tmp_path("nonfinite_", name)

/* A copy of a fixture with element `index` of `tensor` (F32) set to value; its path. */
static const char *patched(const char *fixture, const char *name, const char *tensor, size_t index, float value) {
    st_file f;
    ft_err err;
    if (st_open(&f, test_data(fixture), &err) != FT_OK) return "missing-fixture";
    const st_tensor *t = st_find(&f, tensor);
    const char *path = tmp(name);
    FILE *o = fopen(path, "wb");
    if (t && t->dtype == ST_F32 && index < t->numel && o) {
        size_t at = (size_t)(t->data - f.base) + 4 * index;
        fwrite(f.base, 1, at, o);
        fwrite(&value, 1, 4, o);
        fwrite(f.base + at + 4, 1, f.size - at - 4, o);
    }
    if (o) fclose(o);
    st_close(&f);
    return path;
}

/* Every entry of an F32 tensor set to value. */
static const char *filled(const char *fixture, const char *name, const char *tensor, float value) {
    st_file f;
    ft_err err;
    if (st_open(&f, test_data(fixture), &err) != FT_OK) return "missing-fixture";
    const st_tensor *t = st_find(&f, tensor);
    const char *path = tmp(name);
    unsigned char *copy = malloc(f.size);
    FILE *o = fopen(path, "wb");
    if (t && copy && o) {
        memcpy(copy, f.base, f.size);
        for (uint64_t i = 0; i < t->numel; i++) memcpy(copy + (t->data - f.base) + 4 * i, &value, 4);
        fwrite(copy, 1, f.size, o);
    }
    if (o) fclose(o);
    free(copy);
    st_close(&f);
    return path;
}

static ft_context *cpu_context(void) { return test_cpu_context(1); }

TEST(nonfinite_scan_every_dtype_and_position) {
    enum { N = 10000 };
    static unsigned char buf[4 * N + 8];
    const uint32_t f32[3] = {0x7FC00000u, 0x7F800000u, 0xFF800000u};      /* NaN, +Inf, -Inf */
    const uint16_t f16[3] = {0x7E00u, 0x7C00u, 0xFC00u}, bf16[3] = {0x7FC0u, 0x7F80u, 0xFF80u};
    const char *kinds[3] = {"NaN", "+Inf", "-Inf"};
    size_t where[] = {0, 1, 4095, 4096, 9999};
    for (int dt = 0; dt < 3; dt++) {
        size_t item = dt == FT_DTYPE_F32 ? 4 : 2;
        for (int offset = 0; offset < 2; offset++) { /* aligned and unaligned data */
            unsigned char *p = buf + offset;
            for (size_t i = 0; i < N; i++) { /* finite, some at the extremes of the range */
                uint32_t w = i % 3 == 0 ? 0x7F7FFFFFu : (uint32_t)(i * 2654435761u) & 0xBF7FFFFFu;
                uint16_t h = (uint16_t)(i % 3 == 0 ? (dt == FT_DTYPE_F16 ? 0x7BFFu : 0x7F7Fu) : (i * 40503u) & 0xBBFFu);
                if (item == 4) memcpy(p + 4 * i, &w, 4);
                else memcpy(p + 2 * i, &h, 2);
            }
            CHECK(finite_scan(p, (ft_dtype)dt, N) == N, "dtype %d: finite data flagged", dt);
            for (size_t w = 0; w < sizeof where / sizeof where[0]; w++)
                for (int k = 0; k < 3; k++) {
                    unsigned char save[4];
                    memcpy(save, p + item * where[w], item);
                    const void *bits = dt == FT_DTYPE_F32 ? (const void *)&f32[k] : dt == FT_DTYPE_F16 ? (const void *)&f16[k]
                                                                                                       : (const void *)&bf16[k];
                    memcpy(p + item * where[w], bits, item);
                    size_t got = finite_scan(p, (ft_dtype)dt, N);
                    const char *kind = got < N ? finite_kind(p, (ft_dtype)dt, got) : "";
                    memcpy(p + item * where[w], save, item);
                    CHECK(got == where[w] && strcmp(kind, kinds[k]) == 0, "dtype %d offset %d: %s at %zu found at %zu (%s)",
                          dt, offset, kinds[k], where[w], got, kind);
                }
        }
    }
    return PASS;
}

TEST(nonfinite_weights_refused_with_tensor_and_index) {
    const char *nan_file = patched("sit_b.safetensors", "nan.st", "blocks.1.mlp.fc1.weight", 5, NAN);
    const char *inf_file = patched("sit_b.safetensors", "inf.st", "pos_embed", 100, -INFINITY);
    ft_context *ctx = cpu_context();
    ft_status st = ft_load(ctx, FT_ROLE_PREDICTOR, nan_file);
    int ok = st == FT_ERR_FORMAT && strstr(ft_last_error(ctx), "tensor 'blocks.1.mlp.fc1.weight' holds NaN at element 5");
    if (!ok) test_note("NaN file: status %d: %s", st, ft_last_error(ctx));
    st = ft_load(ctx, FT_ROLE_PREDICTOR, inf_file);
    int ok2 = st == FT_ERR_FORMAT && strstr(ft_last_error(ctx), "tensor 'pos_embed' holds -Inf at element 100");
    if (!ok2) test_note("Inf file: status %d: %s", st, ft_last_error(ctx));
    ft_context_free(ctx);
    CHECK(ok && ok2, "non-finite weights were not refused");
    /* the CLI: info, generate and sample-fid all fail with the tensor named, and write nothing */
    int rc = cli("info %s", nan_file);
    CHECK(rc == 1 && strstr(out, "tensor 'blocks.1.mlp.fc1.weight' holds NaN at element 5"), "info: rc %d: %s", rc, out);
    rc = cli("generate -m %s --sampler H2P1 -n 2 -o %s", nan_file, tmp("nan.png"));
    CHECK(rc == 1 && strstr(out, "holds NaN") && !test_file_exists(tmp("nan.png")) &&
              !test_file_exists(tmp("nan_0.png")), "generate: rc %d: %s", rc, out);
    rc = cli("sample-fid -m %s --sampler H2P1 --num 3 --batch 2 --out %s", nan_file, tmp("nan.npz"));
    CHECK(rc == 1 && strstr(out, "holds NaN") && !test_file_exists(tmp("nan.npz")), "sample-fid: rc %d: %s", rc, out);
    return PASS;
}

/* Finite weights that overflow: a final-layer bias of 3e38 makes the velocity ~3e38, and the Heun update
 * overflows to Inf. The call fails naming the batch and the step; the CLI writes no image and no npz. */
TEST(nonfinite_overflow_during_sampling_reported_with_batch_and_step) {
    const char *huge = filled("sit_b.safetensors", "huge.st", "final_layer.linear.bias", 3.0e38f);
    ft_context *ctx = cpu_context();
    CHECK(ft_load(ctx, FT_ROLE_PREDICTOR, huge) == FT_OK, "%s", ft_last_error(ctx));
    int labels[5] = {0, 1, 2, 0, 1};
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 5;
    gp.labels = labels;
    gp.sampler = "H2P1";
    gp.batch_size = 3;
    static uint8_t img[5 * 12 * 12 * 3];
    ft_status st = ft_generate(ctx, &gp, NULL, img);
    const char *msg = ft_last_error(ctx);
    int ok = st == FT_ERR_NUMERIC && strstr(msg, "images 0..2 (of 5)") && strstr(msg, "after step 1 of 3");
    if (!ok) test_note("status %d: %s", st, msg);
    ft_context_free(ctx);
    CHECK(ok, "the overflow was not reported with its batch and step");
    int rc = cli("generate -m %s --sampler H2P1 -n 2 --grid -o %s", huge, tmp("huge.png"));
    CHECK(rc == 1 && strstr(out, "NaN or Inf") && !test_file_exists(tmp("huge.png")), "generate: rc %d: %s", rc, out);
    rc = cli("sample-fid -m %s --sampler H2P1 --num 3 --batch 2 --out %s", huge, tmp("huge.npz"));
    CHECK(rc == 1 && strstr(out, "NaN or Inf") && !test_file_exists(tmp("huge.npz")), "sample-fid: rc %d: %s", rc, out);
    return PASS;
}

TEST(nonfinite_noise_and_latents_refused) {
    ft_context *ctx = cpu_context();
    CHECK(ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_b.safetensors")) == FT_OK, "%s", ft_last_error(ctx));
    enum { PER = 3 * 12 * 12 };
    static float noise[2 * PER];
    ft_noise(noise, 2, 3, 12, 1);
    noise[PER + 7] = NAN;
    int labels[2] = {0, 1};
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 2;
    gp.labels = labels;
    gp.sampler = "H2P1";
    gp.noise = noise;
    static float lat[2 * PER];
    ft_status st = ft_generate(ctx, &gp, lat, NULL);
    int ok = st == FT_ERR_INVALID_ARGUMENT && strstr(ft_last_error(ctx), "noise: image 1 holds NaN at element 7");
    if (!ok) test_note("noise: status %d: %s", st, ft_last_error(ctx));
    static uint8_t img[2 * 12 * 12 * 3];
    noise[PER + 7] = INFINITY;
    st = ft_decode(ctx, noise, 2, 12, img);
    int ok2 = st == FT_ERR_INVALID_ARGUMENT && strstr(ft_last_error(ctx), "latents: image 1 holds +Inf at element 7");
    if (!ok2) test_note("decode: status %d: %s", st, ft_last_error(ctx));
    ft_context_free(ctx);
    CHECK(ok && ok2, "non-finite inputs were accepted");
    return PASS;
}
