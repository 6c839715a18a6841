/* tests/test_cli.c — the flowturbo command-line tool (build/flowturbo):
 * help and usage errors, generate with the pixel-space fixture (PNGs with
 * parameters, latents, grid, noise files), the latent fixture with and
 * without a VAE, decode, info. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "../host/npy.h"
#include "../host/png.h"
#include "test.h"

#define SAMPLER_B "H2P1" /* sit_b has no refiner */

static char cli_out[65536];

/* Runs "flowturbo ARGS" into cli_out; its exit status. */
#define cli(...) test_cli_run(cli_out, sizeof cli_out, __VA_ARGS__)
#define tmp(name) test_tmp_path("cli_", name)
#define exists test_file_exists

/* 1 when the VAE fixture loads (the decoder is implemented), else a note. */
static int vae_available(void) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    ft_context *ctx = ft_context_new(&cp);
    ft_status st = ft_load(ctx, FT_ROLE_VAE, test_data("vae_tiny.safetensors"));
    if (st != FT_OK) test_note("VAE fixture does not load: %s", ft_last_error(ctx));
    ft_context_free(ctx);
    return st == FT_OK;
}

TEST(cli_help_and_version) {
    CHECK(cli("--help") == 0, "--help failed: %s", cli_out);
    CHECK(strstr(cli_out, "Usage: flowturbo <command>") && strstr(cli_out, "sample-fid") &&
              strstr(cli_out, "merge-npz"), "help text: %s", cli_out);
    CHECK(cli("-h") == 0, "-h failed");
    static const char *cmds[] = {"generate", "decode", "sample-fid", "merge-npz", "info"};
    for (int i = 0; i < 5; i++) {
        CHECK(cli("%s --help", cmds[i]) == 0, "%s --help: %s", cmds[i], cli_out);
        char want[64];
        snprintf(want, sizeof want, "Usage: flowturbo %s", cmds[i]);
        CHECK(strstr(cli_out, want) && strstr(cli_out, "--help"), "%s --help text: %s", cmds[i], cli_out);
        CHECK(cli("%s -h", cmds[i]) == 0, "%s -h", cmds[i]);
    }
    CHECK(strstr(cli_out, "Usage") != NULL, "info -h");
    CHECK(cli("generate --help") == 0 && strstr(cli_out, "--cfg-scale") && strstr(cli_out, "--latents-out") &&
              strstr(cli_out, "--backend") && !strstr(cli_out, "stop-after"), "generate options: %s", cli_out);
    CHECK(cli("--version") == 0 && strstr(cli_out, ft_version()), "--version: %s", cli_out);
    return PASS;
}

TEST(cli_bad_usage_exits_2_naming_the_flag) {
    const char *m = test_data("sit_b.safetensors");
    static const struct {
        const char *args, *expect;
    } cases[] = {
        {"", "Usage"},
        {"bogus", "bogus"},
        {"--bogus", "--bogus"},
        {"generate --bogus", "--bogus"},
        {"generate -m", "-m"},
        {"generate --vae x.safetensors", "--model"}, /* the embedded model is pixel-space */
        {"generate -m %s -s abc", "-s"},
        {"generate -m %s --seed=1x", "--seed"},
        {"generate -m %s --cfg-scale nan", "--cfg-scale"},
        {"generate -m %s --cfg-scale", "--cfg-scale"},
        {"generate -m %s -b 0", "--batch"},
        {"generate -m %s -n -3", "--num"},
        {"generate -m %s --class 1,2.5", "--class"},
        {"generate -m %s --sampler Q7", "--sampler"},
        {"generate -m %s --sampler H1P5R3", "--refiner"},
        {"generate -m %s --sampler " SAMPLER_B " -o out_%%s.png", "--output"},
        {"generate -m %s --backend tpu", "--backend"},
        {"generate -m %s --grid=1", "--grid"},
        {"generate -m %s --grid-cols 0", "--grid-cols"},
        {"generate -m %s extra_arg", "extra_arg"},
        {"generate -m %s --sampler " SAMPLER_B " --class 3", "--class"}, /* sit_b has 3 classes */
        {"decode --latents x.npy", "--vae"},
        {"decode --vae x.safetensors", "--latents"},
        {"sample-fid -m %s --sampler H2P1 --shard 2/2", "--shard"},
        {"sample-fid -m %s --sampler H2P1 --shard 1", "--shard"},
        {"sample-fid -m %s --sampler H2P1 --seed -1", "--seed"},
        {"sample-fid -m %s --sampler H2P1 --num 0", "--num"},
        {"sample-fid -m %s --stop-after x", "--stop-after"},
        {"merge-npz a.npz b.npz", "--output"},
        {"merge-npz -o x.npz", "shard"},
        {"info", "FILE"},
        {"info --bogus x", "--bogus"},
    };
    /* none of these may have run the embedded default model */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024];
        snprintf(args, sizeof args, cases[i].args, m);
        int rc = cli("%s", args);
        CHECK(rc == 2, "'%s' exited %d (want 2): %s", args, rc, cli_out);
        CHECK(strstr(cli_out, cases[i].expect) != NULL, "'%s': message does not name '%s': %s", args,
              cases[i].expect, cli_out);
    }
    return PASS;
}

/* In-process reference run on the CPU backend. */
static int reference_generate(const char *model, const int *labels, int n, uint64_t seed, float cfg, float *lat,
                              uint8_t *img) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    ft_context *ctx = ft_context_new(&cp);
    int ok = ft_load(ctx, FT_ROLE_PREDICTOR, model) == FT_OK;
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = n;
    gp.labels = labels;
    gp.seed = seed;
    gp.sampler = SAMPLER_B;
    gp.cfg_scale = cfg;
    gp.batch_size = 2;
    if (ok) ok = ft_generate(ctx, &gp, lat, img) == FT_OK;
    if (!ok) test_note("reference generate failed: %s", ft_last_error(ctx));
    ft_context_free(ctx);
    return ok;
}

TEST(cli_generate_pixel_model_pngs_and_latents) {
    const char *m = test_data("sit_b.safetensors");
    CHECK(cli("generate -m %s --backend cpu --sampler " SAMPLER_B " --class 0,2 -n 3 -s 5 -b 2 -o %s --latents-out %s",
              m, tmp("gen_%02d.png"), tmp("gen_z.npy")) == 0, "generate failed: %s", cli_out);
    CHECK(strstr(cli_out, "it/s") || strstr(cli_out, "s/it"), "no progress bar: %s", cli_out);
    CHECK(strstr(cli_out, "sampling completed, taking") && strstr(cli_out, "writing completed, taking"),
          "timing lines: %s", cli_out);
    int labels[3] = {0, 2, 0};
    float lat[3 * 3 * 12 * 12];
    uint8_t img[3 * 12 * 12 * 3];
    if (!reference_generate(m, labels, 3, 5, 4.0f, lat, img)) return FAIL;
    npy_array z;
    hx_err err;
    CHECK(npy_load(tmp("gen_z.npy"), &z, &err) == 0, "%s", err.msg);
    CHECK(z.h.dtype == NPY_F32 && z.h.ndim == 4 && z.h.shape[0] == 3 && z.h.shape[1] == 3 && z.h.shape[2] == 12 &&
              z.h.shape[3] == 12, "latents shape");
    CHECK(memcmp(z.data, lat, sizeof lat) == 0, "latents differ from the in-process run");
    npy_free(&z);
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "gen_%02d.png", k);
        ftpng_image png;
        CHECK(ftpng_read(tmp(name), &png, &err) == 0, "%s", err.msg);
        CHECK(png.w == 12 && png.h == 12 && png.channels == 3, "png %d: %dx%dx%d", k, png.w, png.h, png.channels);
        CHECK(memcmp(png.pixels, img + k * 432, 432) == 0, "png %d pixels differ from the in-process run", k);
        const char *p = ftpng_find_text(&png, "parameters");
        char want[512];
        snprintf(want, sizeof want,
                 "class %d\nSteps: 3, Sampler: H2P1R0, CFG scale: 4, Seed: %d, Size: 12x12, Model: sit_b.safetensors, "
                 "Version: flowturbo %s",
                 labels[k], 5 + k, ft_version());
        CHECK(p && strcmp(p, want) == 0, "png %d parameters:\n%s\nwant:\n%s", k, p ? p : "(none)", want);
        ftpng_free(&png);
    }
    return PASS;
}

TEST(cli_generate_default_names_grid_and_noise) {
    const char *m = test_data("sit_b.safetensors");
    /* no pattern, n > 1: _<index> before the extension; default labels 0,1,2,0 */
    CHECK(cli("generate -m %s --backend cpu --sampler " SAMPLER_B " -n 4 --cfg-scale 1 -o %s", m, tmp("plain.png")) == 0,
          "%s", cli_out);
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "plain_%d.png", k);
        CHECK(exists(tmp(name)), "%s missing", name);
    }
    CHECK(!exists(tmp("plain.png")), "plain.png should not exist");
    ftpng_image png;
    hx_err err;
    CHECK(ftpng_read(tmp("plain_3.png"), &png, &err) == 0, "%s", err.msg);
    const char *p = ftpng_find_text(&png, "parameters");
    CHECK(p && strncmp(p, "class 0\n", 8) == 0 && strstr(p, "CFG scale: 1,") && strstr(p, "Seed: 45,"),
          "parameters: %s", p ? p : "(none)");
    uint8_t tile3[432];
    memcpy(tile3, png.pixels, 432);
    ftpng_free(&png);
    /* grid of the same four images: 2x2 tiles */
    CHECK(cli("generate -m %s --backend cpu --sampler " SAMPLER_B " -n 4 --cfg-scale 1 --grid -o %s", m,
              tmp("grid.png")) == 0, "%s", cli_out);
    CHECK(ftpng_read(tmp("grid.png"), &png, &err) == 0, "%s", err.msg);
    CHECK(png.w == 24 && png.h == 24, "grid %dx%d", png.w, png.h);
    for (int y = 0; y < 12; y++)
        CHECK(memcmp(png.pixels + ((12 + y) * 24 + 12) * 3, tile3 + y * 36, 36) == 0, "grid tile 3 row %d", y);
    p = ftpng_find_text(&png, "parameters");
    CHECK(p && strncmp(p, "classes 0,1,2,0\n", 16) == 0, "grid parameters: %s", p ? p : "(none)");
    ftpng_free(&png);
    /* --noise with the seed's own noise reproduces the seeded run */
    float noise[2 * 3 * 12 * 12];
    ft_noise(noise, 2, 3, 12, 77);
    int64_t shape[4] = {2, 3, 12, 12};
    CHECK(npy_save(tmp("noise.npy"), NPY_F32, 4, shape, noise, &err) == 0, "%s", err.msg);
    CHECK(cli("generate -m %s --backend cpu --sampler " SAMPLER_B " --class 1 --noise %s --latents-out %s", m,
              tmp("noise.npy"), tmp("zn.npy")) == 0, "%s", cli_out);
    CHECK(cli("generate -m %s --backend cpu --sampler " SAMPLER_B " --class 1 -n 2 -s 77 --latents-out %s", m,
              tmp("zs.npy")) == 0, "%s", cli_out);
    npy_array a, b;
    CHECK(npy_load(tmp("zn.npy"), &a, &err) == 0 && npy_load(tmp("zs.npy"), &b, &err) == 0, "%s", err.msg);
    CHECK(a.h.shape[0] == 2 && memcmp(a.data, b.data, (size_t)a.h.data_bytes) == 0, "--noise run differs from seed run");
    npy_free(&a);
    npy_free(&b);
    /* wrong noise shape: a clear message */
    int64_t bad[4] = {1, 4, 12, 12};
    CHECK(npy_save(tmp("bad_noise.npy"), NPY_F32, 4, bad, noise, &err) == 0, "%s", err.msg);
    CHECK(cli("generate -m %s --sampler " SAMPLER_B " --noise %s", m, tmp("bad_noise.npy")) == 1 &&
              strstr(cli_out, "[N, 3, 12, 12]"), "bad noise: %s", cli_out);
    CHECK(cli("generate -m %s --sampler " SAMPLER_B " -n 3 --noise %s", m, tmp("noise.npy")) == 2 &&
              strstr(cli_out, "--noise"), "noise count: %s", cli_out);
    return PASS;
}

TEST(cli_latent_model_needs_vae) {
    const char *m = test_data("sit_a.safetensors"), *r = test_data("sit_a_refiner.safetensors");
    CHECK(cli("generate -m %s --refiner %s --sampler H1P1R1 -o %s", m, r, tmp("lat.png")) == 1, "exit: %s", cli_out);
    CHECK(strstr(cli_out, "VAE") && strstr(cli_out, "--vae"), "message: %s", cli_out);
    CHECK(!exists(tmp("lat.png")), "a PNG was written");
    /* only latents: fine without a VAE */
    CHECK(cli("generate -m %s --refiner %s --sampler H1P1R1 --class 4,1 --latents-out %s", m, r, tmp("lat.npy")) == 0,
          "%s", cli_out);
    npy_array z;
    hx_err err;
    CHECK(npy_load(tmp("lat.npy"), &z, &err) == 0, "%s", err.msg);
    CHECK(z.h.shape[0] == 2 && z.h.shape[1] == 4 && z.h.shape[2] == 8 && all_finite(z.data, (size_t)z.h.numel),
          "latents");
    npy_free(&z);
    CHECK(!exists("output.png"), "output.png written in the working directory");
    return PASS;
}

TEST(cli_generate_and_decode_with_vae) {
    if (!vae_available()) SKIP_BECAUSE("ft_load of vae_tiny.safetensors fails (VAE decoder not available)");
    const char *m = test_data("sit_a.safetensors"), *r = test_data("sit_a_refiner.safetensors"),
               *v = test_data("vae_tiny.safetensors");
    CHECK(cli("generate -m %s --refiner %s --vae %s --backend cpu --sampler H1P1R1 --class 3 -n 2 -s 11 -o %s "
              "--latents-out %s", m, r, v, tmp("vae_%d.png"), tmp("vae_z.npy")) == 0, "%s", cli_out);
    ftpng_image png;
    hx_err err;
    CHECK(ftpng_read(tmp("vae_1.png"), &png, &err) == 0, "%s", err.msg);
    CHECK(png.w == 32 && png.h == 32 && png.channels == 3, "size %dx%d", png.w, png.h);
    const char *p = ftpng_find_text(&png, "parameters");
    CHECK(p && strstr(p, "Seed: 12,") && strstr(p, "Refiner: sit_a_refiner.safetensors") &&
              strstr(p, "VAE: vae_tiny.safetensors") && strstr(p, "Size: 32x32"), "parameters: %s", p ? p : "(none)");
    /* decode the latents: the same pixels */
    CHECK(cli("decode --vae %s --backend cpu --latents %s -o %s", v, tmp("vae_z.npy"), tmp("dec_%d.png")) == 0, "%s",
          cli_out);
    ftpng_image d;
    CHECK(ftpng_read(tmp("dec_1.png"), &d, &err) == 0, "%s", err.msg);
    CHECK(d.w == 32 && memcmp(d.pixels, png.pixels, 32 * 32 * 3) == 0, "decoded pixels differ from generate's");
    ftpng_free(&d);
    ftpng_free(&png);
    return PASS;
}

TEST(cli_decode_pixel_model_and_errors) {
    const char *m = test_data("sit_b.safetensors");
    CHECK(cli("generate -m %s --backend cpu --sampler " SAMPLER_B " -n 2 -o %s --latents-out %s", m, tmp("pd.png"),
              tmp("pd.npy")) == 0, "%s", cli_out);
    CHECK(cli("decode -m %s --backend cpu --latents %s --grid --grid-cols 1 -o %s", m, tmp("pd.npy"),
              tmp("pd_grid.png")) == 0, "%s", cli_out);
    ftpng_image g, a;
    hx_err err;
    CHECK(ftpng_read(tmp("pd_grid.png"), &g, &err) == 0 && g.w == 12 && g.h == 24, "grid: %s", err.msg);
    CHECK(ftpng_read(tmp("pd_1.png"), &a, &err) == 0, "%s", err.msg);
    CHECK(memcmp(g.pixels + 12 * 36, a.pixels, 432) == 0, "decoded image 1 differs from generate's");
    ftpng_free(&g);
    ftpng_free(&a);
    /* a latents file of the wrong type: exit 1 with the shape in the message */
    int64_t l[1] = {3};
    int64_t lv[3] = {1, 2, 3};
    CHECK(npy_save(tmp("lab.npy"), NPY_I64, 1, l, lv, &err) == 0, "%s", err.msg);
    CHECK(cli("decode -m %s --latents %s", m, tmp("lab.npy")) == 1 && strstr(cli_out, "float32 [N, C, S, S]"),
          "%s", cli_out);
    CHECK(cli("decode -m %s --latents %s", m, tmp("missing.npy")) == 1 && strstr(cli_out, "missing.npy"), "%s", cli_out);
    return PASS;
}

TEST(cli_info_tables_and_errors) {
    CHECK(cli("info %s", test_data("sit_b.safetensors")) == 0, "%s", cli_out);
    CHECK(strstr(cli_out, "in_channels") && strstr(cli_out, "x_embedder.proj.weight") &&
              strstr(cli_out, "total: 42 tensors") && strstr(cli_out, "[48, 3, 4, 4]"), "info output: %s", cli_out);
    CHECK(cli("info %s", test_data("vae_tiny.safetensors")) == 0 && strstr(cli_out, "scaling_factor"), "%s", cli_out);
    FILE *f = fopen(tmp("broken.safetensors"), "wb");
    CHECK(f, "create");
    const unsigned char hdr[] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    fwrite(hdr, 1, sizeof hdr, f);
    fclose(f);
    int rc = cli("info %s", tmp("broken.safetensors"));
    CHECK(rc == 1 && strstr(cli_out, "broken.safetensors"), "broken file: rc %d: %s", rc, cli_out);
    CHECK(cli("info %s", tmp("nope.safetensors")) == 1, "missing file");
    return PASS;
}

/* No -m: the embedded Fashion-MNIST SiT + refiner make a labelled grid, every
 * class a column (10 x 4 tiles of 32 px enlarged to 96 px + gaps + a header). */
TEST(cli_generate_embedded_default_grid) {
    const char *out = tmp("default_grid.png");
    CHECK(cli("generate --backend cpu -t 2 --sampler H1P1R1 -o %s", out) == 0, "%s", cli_out);
    CHECK(strstr(cli_out, "embedded:fashion_sit") && strstr(cli_out, "40 images"), "%s", cli_out);
    ftpng_image img;
    hx_err err;
    CHECK(ftpng_read(out, &img, &err) == 0, "%s", err.msg);
    int ok = img.w == 10 * 98 + 2 && img.h == 15 + 4 * 98 + 2 && img.channels == 3;
    int text_pixels = 0; /* the class-name header is drawn in light grey on dark grey */
    for (int y = 0; y < 15; y++)
        for (int x = 0; x < img.w; x++) text_pixels += img.pixels[((size_t)y * img.w + x) * 3] > 200;
    int has_params = img.n_texts > 0 && strstr(img.texts[0], "Model: embedded:fashion_sit") &&
                     strstr(img.texts[0], "Refiner: embedded:fashion_refiner");
    int w = img.w, h = img.h, ch = img.channels;
    ftpng_free(&img);
    CHECK(ok, "grid is %dx%dx%d", w, h, ch);
    CHECK(text_pixels > 300, "no class labels drawn (%d light pixels in the header)", text_pixels);
    CHECK(has_params, "parameters text does not name the embedded models");
    return PASS;
}
