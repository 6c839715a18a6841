/* tests/test_bounds.c — untrusted numbers are bounded before any work: thread
 * counts, image counts, batch sizes (allocated for min(batch, n)), latent
 * sizes against the backend's attention limit, the guidance scale, npz
 * member sizes; output paths are checked before sampling; loading and
 * decoding can be cancelled. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../engine/flowturbo.h"
#include "../host/npy.h"
#include "../host/npz.h"
#include "test.h"

static char out[65536];
#define cli(...) test_cli_run(out, sizeof out, __VA_ARGS__)
#define tmp(name) test_tmp_path("bounds_", name)

TEST(bounds_thread_count_refused_above_the_limit) {
    static const char *cmds[] = {"generate -n 1 -t 65536 -o %s", "generate -n 1 -t 1025 -o %s", "generate -n 1 -t -1 -o %s"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = cli(cmds[i], tmp("t.png"));
        CHECK(rc == 2 && strstr(out, "'--threads' must be in 0..1024"), "'%s': rc %d: %s", cmds[i], rc, out);
        CHECK(!test_file_exists(tmp("t.png")), "'%s' made an image", cmds[i]);
    }
    /* the library refuses it before starting any thread; every call then names the reason */
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = FT_MAX_THREADS + 1;
    ft_context *ctx = ft_context_new(&cp);
    CHECK(ctx, "out of memory");
    ft_status st = ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_b.safetensors"));
    int ok = st == FT_ERR_UNSUPPORTED && strstr(ft_last_error(ctx), "n_threads 1025 is above the limit of 1024");
    if (!ok) test_note("status %d: %s", st, ft_last_error(ctx));
    ft_context_free(ctx);
    CHECK(ok, "n_threads above FT_MAX_THREADS accepted");
    return PASS;
}

TEST(bounds_image_count_and_batch_checked_before_allocating) {
    /* 2^31 - 1 images: refused as an argument (it used to allocate 8 GiB of labels first) */
    int rc = cli("generate -n 2147483647 -o %s", tmp("n.png"));
    CHECK(rc == 2 && strstr(out, "'--num' must be in 1..1000000"), "rc %d: %s", rc, out);
    /* a batch far larger than the run is allocated for the run: the same archive as --batch 3 */
    const char *m = test_data("sit_b.safetensors");
    rc = cli("sample-fid -m %s --sampler H2P1 --num 3 --batch 2147483647 --out %s", m, tmp("huge_batch.npz"));
    CHECK(rc == 0, "--batch 2147483647: rc %d: %s", rc, out);
    rc = cli("sample-fid -m %s --sampler H2P1 --num 3 --batch 3 --out %s", m, tmp("batch3.npz"));
    CHECK(rc == 0, "--batch 3: rc %d: %s", rc, out);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", tmp("huge_batch.npz"), tmp("batch3.npz"));
    CHECK(test_run(cmd) == 0, "--batch 2147483647 and --batch 3 archives differ");
    return PASS;
}

TEST(bounds_cfg_scale_range_named_up_front) {
    int rc = cli("generate -n 1 --cfg-scale 3e38 -o %s", tmp("c.png"));
    CHECK(rc == 2 && strstr(out, "'--cfg-scale' must be in [-1e+06, 1e+06], got 3e+38"), "rc %d: %s", rc, out);
    rc = cli("sample-fid -m %s --sampler H2P1 --num 3 --cfg-scale -2e6 --out %s", test_data("sit_b.safetensors"),
             tmp("c.npz"));
    CHECK(rc == 2 && strstr(out, "'--cfg-scale' must be in"), "sample-fid: rc %d: %s", rc, out);
    ft_context *ctx = test_cpu_context(0);
    int labels[1] = {0};
    float lat[3 * 12 * 12];
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.labels = labels;
    gp.sampler = "H2P1";
    gp.cfg_scale = 3e38f;
    ft_status st = ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_b.safetensors"));
    if (st == FT_OK) st = ft_generate(ctx, &gp, lat, NULL);
    int ok = st == FT_ERR_INVALID_ARGUMENT && strstr(ft_last_error(ctx), "cfg_scale 3e+38 is outside [-1e+06, 1e+06]");
    if (!ok) test_note("status %d: %s", st, ft_last_error(ctx));
    ft_context_free(ctx);
    CHECK(ok, "the library's message does not name the bound");
    return PASS;
}

/* Latents whose side needs a longer attention than the backend supports are refused before decoding starts
 * (the VAE's mid-block attends over side^2 positions; the CPU backend's limit is 131072). */
TEST(bounds_latent_size_checked_against_the_backend) {
    int64_t shape[4] = {1, 4, 400, 400};
    float *z = calloc(4 * 400 * 400, sizeof(float));
    hx_err err;
    CHECK(z && npy_save(tmp("z400.npy"), NPY_F32, 4, shape, z, &err) == 0, "write latents");
    free(z);
    int rc = cli("decode --vae %s --latents %s -o %s", test_data("vae_tiny.safetensors"), tmp("z400.npy"),
                 tmp("z400.png"));
    CHECK(rc == 1 && strstr(out, "decoding 400x400 latents (the VAE's mid-block) needs attention over 160000 tokens; "
                               "the cpu backend supports at most 131072"),
          "rc %d: %s", rc, out);
    CHECK(!strstr(out, "decoding completed"), "decoding ran: %s", out);
    return PASS;
}

/* Missing directories (where the writer does not make them: generate and decode do, under a writable directory),
 * files used as directories and directories given as file names fail before the model is even loaded. */
TEST(bounds_output_paths_checked_before_sampling) {
    const char *m = test_data("sit_b.safetensors");
    char missing[600], under_file[600];
    snprintf(missing, sizeof missing, "%s/no_such_dir/x.png", test_tmpdir());
    snprintf(under_file, sizeof under_file, "%s/more/x.png", tmp("a_file"));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/a_dir.png", test_tmpdir()); /* named like an image: the directory is the error */
    FILE *f = fopen(tmp("a_file"), "w");
    CHECK(f && fputs("x", f) >= 0 && fclose(f) == 0 && (mkdir(dir, 0755) == 0 || errno == EEXIST),
          "cannot make %s and %s", tmp("a_file"), dir);
    static const struct {
        const char *fmt, *expect;
        int path_is_dir;
    } cases[] = {
        {"generate -m %s --sampler H2P1 -n 2 -o %s", "is not a directory", 2},
        {"generate -m %s --sampler H2P1 -n 2 -o %s", "is a directory", 1},
        {"generate -m %s --sampler H2P1 -n 2 --latents-out %s", "is a directory", 1},
        {"generate -m %s --sampler H2P1 -n 2 --latents-out %s", "is not a directory", 2},
        {"sample-fid -m %s --sampler H2P1 --num 3 --out %s", "does not exist", 0},
        {"sample-fid -m %s --sampler H2P1 --num 3 --out %s", "is a directory", 1},
        {"sample-fid -m %s --sampler H2P1 --num 3 --labels-out %s", "is a directory", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = cases[i].path_is_dir == 1 ? dir : cases[i].path_is_dir ? under_file : missing;
        int rc = cli(cases[i].fmt, m, path);
        char what[256];
        snprintf(what, sizeof what, cases[i].fmt, "MODEL",
                 cases[i].path_is_dir == 1 ? "DIR" : cases[i].path_is_dir ? "FILE/more/x" : "MISSING/x");
        CHECK(rc == 1 && strstr(out, cases[i].expect), "'%s': rc %d: %s", what, rc, out);
        CHECK(!strstr(out, "loading") && !strstr(out, "generating") && !strstr(out, "sampling"),
              "'%s' did work before failing: %s", what, out);
    }
    int rc = cli("decode -m %s --latents %s -o %s", m, tmp("none.npy"), under_file);
    CHECK(rc == 1 && strstr(out, "is not a directory"), "decode: rc %d: %s", rc, out);
    rc = cli("merge-npz -o %s %s", missing, tmp("none.npz"));
    CHECK(rc == 1 && strstr(out, "does not exist"), "merge-npz: rc %d: %s", rc, out);
    return PASS;
}

static int cancel_at(ft_phase phase, int step, int total, void *user) {
    (void)total;
    const int *when = user;
    return (int)phase == when[0] && step >= when[1];
}

/* A progress callback (the CLI's Ctrl-C / SIGTERM) stops loading and decoding too; the previous model stays. */
TEST(bounds_loading_and_decoding_can_be_cancelled) {
    int when[2] = {FT_PHASE_LOADING, 1000000};
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.progress_cb = cancel_at;
    cp.progress_user = when;
    ft_context *ctx = ft_context_new(&cp);
    CHECK(ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_b.safetensors")) == FT_OK, "%s", ft_last_error(ctx));
    when[1] = 3;
    ft_status st = ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_a.safetensors"));
    int ok = st == FT_ERR_CANCELLED && strstr(ft_last_error(ctx), "loading cancelled");
    if (!ok) test_note("load: status %d: %s", st, ft_last_error(ctx));
    ft_model_info mi;
    ft_model_get_info(ctx, FT_ROLE_PREDICTOR, &mi);
    ok = ok && mi.loaded && mi.input_size == 12; /* still sit_b */
    when[0] = FT_PHASE_DECODING, when[1] = 4;
    static float lat[12 * 3 * 12 * 12];
    static uint8_t img[12 * 12 * 12 * 3];
    ft_noise(lat, 12, 3, 12, 1);
    st = ft_decode(ctx, lat, 12, 12, img);
    int ok2 = st == FT_ERR_CANCELLED && strstr(ft_last_error(ctx), "after 4 images");
    if (!ok2) test_note("decode: status %d: %s", st, ft_last_error(ctx));
    ft_context_free(ctx);
    CHECK(ok && ok2, "loading or decoding did not stop");
    return PASS;
}

TEST(bounds_npz_writer_refuses_member_sizes_that_wrap) {
    npz_writer *w;
    hx_err err;
    CHECK(npz_writer_open(&w, tmp("wrap_w.npz"), 0, &err) == 0, "%s", err.msg);
    int64_t shape[4] = {96076792050570581LL, 8, 8, 3}; /* 2^64 - 64 bytes: + the header wraps */
    int rc = npz_writer_begin(w, "arr_0", NPY_U8, 4, shape, &err);
    npz_writer_abort(w);
    CHECK(rc != 0 && strstr(err.msg, "too large"), "accepted: %s", rc ? err.msg : "(no error)");
    return PASS;
}
