/* tests/test_fid.c — sample-fid and merge-npz with the pixel-space fixture:
 * archive contents (arr_0, labels) against in-process generation, resuming
 * after a simulated crash, shards merged byte-identical to an unsharded run,
 * refusing a different configuration, and the label function. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/ft_random_model.h"
#include "../engine/flowturbo.h"
#include "../host/fid_spool.h"
#include "../host/labels.h"
#include "../host/npy.h"
#include "../host/npz.h"
#include "fid_lanes_check.h"
#include "test.h"

/* 12 images in batches of 5 with sit_b (pixel space, 3 classes, 12x12). */
#define FID_ARGS "-m %s --backend cpu --sampler H2P1 --num 12 --batch 5 --cfg-scale 1.5 --seed 7"
#define FID_N 12
#define FID_SEED 7

static char fid_out[65536];
/* Runs "flowturbo ARGS" into fid_out; its exit status. */
#define fid_cli(...) test_cli_run(fid_out, sizeof fid_out, __VA_ARGS__)
#define tmp(name) test_tmp_path("fid_", name)
#define exists test_file_exists

static int same_bytes(const char *a, const char *b) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return test_run(cmd) == 0;
}

/* The uninterrupted, unsharded reference run (made once). */
static const char *full_run(void) {
    static int done;
    if (!done) {
        if (fid_cli("sample-fid " FID_ARGS " --out %s --labels-out %s", test_data("sit_b.safetensors"), tmp("full.npz"),
                    tmp("full_labels.npy")) != 0) {
            test_note("reference sample-fid run failed: %s", fid_out);
            return NULL;
        }
        done = 1;
    }
    return tmp("full.npz");
}

TEST(fid_archive_contents_match_library) {
    const char *full = full_run();
    CHECK(full, "no reference run");
    npz_reader r;
    hx_err err;
    CHECK(npz_reader_open(&r, full, &err) == 0, "%s", err.msg);
    const npz_member *a = npz_reader_find(&r, "arr_0"), *l = npz_reader_find(&r, "labels");
    CHECK(r.n == 2 && a && l && strcmp(r.m[0].name, "arr_0") == 0, "members");
    CHECK(a->h.dtype == NPY_U8 && a->h.ndim == 4 && a->h.shape[0] == FID_N && a->h.shape[1] == 12 &&
              a->h.shape[2] == 12 && a->h.shape[3] == 3, "arr_0 must be uint8 [12, 12, 12, 3]");
    CHECK(npz_reader_check_crc(&r, a, &err) == 0 && npz_reader_check_crc(&r, l, &err) == 0, "%s", err.msg);
    uint8_t *img = malloc(FID_N * 432);
    CHECK(npz_reader_read(&r, a, 0, img, FID_N * 432, &err) == 0, "%s", err.msg);
    npy_array lab, lab_out;
    CHECK(npz_reader_load(&r, "labels", &lab, &err) == 0, "%s", err.msg);
    npz_reader_close(&r);
    CHECK(npy_load(tmp("full_labels.npy"), &lab_out, &err) == 0, "%s", err.msg);
    CHECK(lab_out.h.dtype == NPY_I64 && lab_out.h.shape[0] == FID_N &&
              memcmp(lab.data, lab_out.data, FID_N * 8) == 0, "--labels-out differs from the npz labels");
    int labels[FID_N];
    for (int k = 0; k < FID_N; k++) {
        labels[k] = draw_label(FID_SEED, (uint64_t)k, 3);
        CHECK(((int64_t *)lab.data)[k] == labels[k], "label %d", k);
    }
    npy_free(&lab);
    npy_free(&lab_out);
    /* the same images from the library, batches aligned the same way */
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    ft_context *ctx = ft_context_new(&cp);
    CHECK(ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_b.safetensors")) == FT_OK, "%s", ft_last_error(ctx));
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = FID_N;
    gp.labels = labels;
    gp.seed = FID_SEED;
    gp.sampler = "H2P1";
    gp.cfg_scale = 1.5f;
    gp.batch_size = 5;
    uint8_t *ref = malloc(FID_N * 432);
    ft_status st = ft_generate(ctx, &gp, NULL, ref);
    ft_context_free(ctx);
    CHECK(st == FT_OK, "generate failed");
    int same = memcmp(img, ref, FID_N * 432) == 0;
    free(img);
    free(ref);
    CHECK(same, "arr_0 differs from ft_generate with the same labels and seed");
    return PASS;
}

TEST(fid_resume_after_crash_is_identical) {
    const char *full = full_run();
    CHECK(full, "no reference run");
    const char *m = test_data("sit_b.safetensors");
    /* killed (SIGKILL) after the first batch (5 images) is committed, leaving a torn write behind */
    int rc = fid_cli("sample-fid " FID_ARGS " --out %s --stop-after 1", m, tmp("crash.npz"));
    CHECK(rc != 0, "the simulated crash did not stop the run: %s", fid_out);
    CHECK(!exists(tmp("crash.npz")) && exists(tmp("crash.npz.spool/state")), "after the crash: output %d spool %d",
          exists(tmp("crash.npz")), exists(tmp("crash.npz.spool/state")));
    /* a second crash on resume, then the final resume */
    rc = fid_cli("sample-fid " FID_ARGS " --out %s --stop-after 6", m, tmp("crash.npz"));
    CHECK(rc != 0 && strstr(fid_out, "resuming"), "second run: rc %d: %s", rc, fid_out);
    CHECK(fid_cli("sample-fid " FID_ARGS " --out %s --labels-out %s", m, tmp("crash.npz"), tmp("crash_labels.npy")) == 0,
          "resume failed: %s", fid_out);
    CHECK(strstr(fid_out, "resuming"), "did not resume: %s", fid_out);
    CHECK(same_bytes(full, tmp("crash.npz")), "resumed archive differs from the uninterrupted one");
    CHECK(same_bytes(tmp("full_labels.npy"), tmp("crash_labels.npy")), "labels differ");
    CHECK(!exists(tmp("crash.npz.spool/images.raw")), "spool images left behind");
    /* rerunning a finished run does nothing */
    CHECK(fid_cli("sample-fid " FID_ARGS " --out %s", m, tmp("crash.npz")) == 0 && strstr(fid_out, "already complete"),
          "rerun: %s", fid_out);
    return PASS;
}

TEST(fid_other_config_refused) {
    const char *full = full_run();
    CHECK(full, "no reference run");
    const char *m = test_data("sit_b.safetensors");
    CHECK(fid_cli("sample-fid " FID_ARGS " --out %s --stop-after 5", m, tmp("cfg.npz")) != 0, "crash run");
    int rc = fid_cli("sample-fid -m %s --backend cpu --sampler H2P1 --num 12 --batch 5 --cfg-scale 2 --seed 7 --out %s",
                     m, tmp("cfg.npz"));
    CHECK(rc == 1 && strstr(fid_out, "cfg-scale") && strstr(fid_out, "'1.5'") && strstr(fid_out, "'2'"),
          "rc %d: %s", rc, fid_out);
    rc = fid_cli("sample-fid -m %s --backend cpu --sampler H2P1 --num 12 --batch 4 --cfg-scale 1.5 --seed 8 --out %s",
                 m, tmp("cfg.npz"));
    CHECK(rc == 1 && strstr(fid_out, "seed") && strstr(fid_out, "batch"), "rc %d: %s", rc, fid_out);
    /* the original command still resumes */
    CHECK(fid_cli("sample-fid " FID_ARGS " --out %s", m, tmp("cfg.npz")) == 0, "%s", fid_out);
    CHECK(same_bytes(full, tmp("cfg.npz")), "archive differs");
    return PASS;
}

TEST(fid_shards_merge_byte_identical) {
    const char *full = full_run();
    CHECK(full, "no reference run");
    const char *m = test_data("sit_b.safetensors");
    CHECK(fid_cli("sample-fid " FID_ARGS " --shard 0/2 --out %s", m, tmp("s2_0.npz")) == 0, "%s", fid_out);
    CHECK(fid_cli("sample-fid " FID_ARGS " --shard 1/2 --out %s", m, tmp("s2_1.npz")) == 0, "%s", fid_out);
    CHECK(fid_cli("merge-npz -o %s %s %s", tmp("m2.npz"), tmp("s2_0.npz"), tmp("s2_1.npz")) == 0, "%s", fid_out);
    CHECK(same_bytes(full, tmp("m2.npz")), "2-shard merge differs from the unsharded run");
    /* three shards that split batches: [0,4) [4,8) [8,12) */
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "s3_%d.npz", i);
        CHECK(fid_cli("sample-fid " FID_ARGS " --shard %d/3 --out %s", m, i, tmp(name)) == 0, "%s", fid_out);
    }
    CHECK(fid_cli("merge-npz -o %s %s %s %s", tmp("m3.npz"), tmp("s3_0.npz"), tmp("s3_1.npz"), tmp("s3_2.npz")) == 0,
          "%s", fid_out);
    CHECK(same_bytes(full, tmp("m3.npz")), "3-shard merge differs from the unsharded run");
    /* wrong order, a missing shard, shards of different runs: refused */
    CHECK(fid_cli("merge-npz -o %s %s %s", tmp("bad.npz"), tmp("s2_1.npz"), tmp("s2_0.npz")) == 1 &&
              strstr(fid_out, "order"), "wrong order: %s", fid_out);
    CHECK(fid_cli("merge-npz -o %s %s %s", tmp("bad.npz"), tmp("s3_0.npz"), tmp("s3_1.npz")) == 1 &&
              strstr(fid_out, "missing"), "missing shard: %s", fid_out);
    CHECK(fid_cli("merge-npz -o %s %s %s", tmp("bad.npz"), tmp("s2_0.npz"), tmp("s3_1.npz")) == 1, "mixed shards: %s",
          fid_out);
    CHECK(!exists(tmp("bad.npz")), "a refused merge left an output");
    return PASS;
}

TEST(fid_numpy_reads_archive) {
    if (test_run("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        SKIP_BECAUSE("/usr/bin/python3 with numpy is not available");
    const char *full = full_run();
    CHECK(full, "no reference run");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import numpy as np, sys\n"
             "d = np.load(sys.argv[1])\n"
             "a = d['arr_0']\n"
             "assert a.dtype == np.uint8 and a.shape == (12, 12, 12, 3), (a.dtype, a.shape)\n"
             "l = d['labels']\n"
             "assert l.dtype == np.int64 and l.shape == (12,) and l.min() >= 0 and l.max() < 3\n"
             "assert (np.load(sys.argv[2]) == l).all()\n"
             "\" %s %s",
             full, tmp("full_labels.npy"));
    CHECK(test_run(cmd) == 0, "numpy rejected the sample-fid archive");
    return PASS;
}

TEST(fid_labels_deterministic_and_uniform) {
    enum { N = 60000, C = 10 };
    int counts[C] = {0};
    for (uint64_t k = 0; k < N; k++) {
        int l = draw_label(123, k, C);
        CHECK(l >= 0 && l < C, "label %d out of range", l);
        CHECK(l == draw_label(123, k, C), "not deterministic");
        counts[l]++;
    }
    for (int c = 0; c < C; c++) CHECK(counts[c] > N / C * 0.95 && counts[c] < N / C * 1.05, "class %d: %d", c, counts[c]);
    int differ = 0;
    for (uint64_t k = 0; k < 100; k++) differ += draw_label(1, k, 1000) != draw_label(2, k, 1000);
    CHECK(differ > 90, "labels barely depend on the seed (%d/100 differ)", differ);
    CHECK(draw_label(5, 3, 1) == 0, "one class");
    return PASS;
}

TEST(fid_spool_config_diff_names_keys) {
    char msg[1024];
    fid_config_diff("a: 1\nb: 2\n# c: x\n", "a: 1\nb: 3\n# c: y\nd: 4\n", msg, sizeof msg);
    CHECK(strstr(msg, "b: spool has '2', this command has '3'") && strstr(msg, "d: spool has '(none)'") &&
              !strstr(msg, "a:") && !strstr(msg, "c:"), "diff: %s", msg);
    fid_config_diff("a: 1\n", "a: 1\n", msg, sizeof msg);
    CHECK(msg[0] == 0, "equal configs differ: %s", msg);
    return PASS;
}

/* The FID path's double buffering (host/fid_lanes.c: two contexts on shared models, each with its own buffer) equals
 * one lane byte for byte over 1,000 images on the CPU backend (the CUDA suite runs the same check, with the VAE,
 * on the emulator and on a GPU). An 8x8 RGB pixel-space SiT with random weights, heun:2, cfg 1.5, batches of 24. */
TEST(fid_lanes_double_buffer_equals_one_stream_cpu_1000) {
    char px[512], err[1024];
    snprintf(px, sizeof px, "%s/fid_lanes_px.safetensors", test_tmpdir());
    rm_sit_cfg pc = {0, 8, 3, 2, 32, 1, 2, 10, 0, 3, 2.0}; /* 8x8 RGB pixels, 16 tokens, 1 block, 10 classes */
    CHECK(rm_write_sit(px, &pc, 31, 0, err, sizeof err), "%s", err);
    CHECK(fid_lanes_double_equals_single(FT_BACKEND_CPU, px, NULL, NULL, "heun:2", 1000, 24, 8),
          "two lanes differ from one lane");
    return PASS;
}
