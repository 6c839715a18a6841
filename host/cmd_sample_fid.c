/*
 * host/cmd_sample_fid.c — `flowturbo sample-fid`: N class-conditional samples
 * for FID/IS/precision/recall, written as an ADM-evaluator .npz.
 *
 * Determinism: global image k has label draw_label(seed, k) (labels.h) and
 * noise seed seed + k. Batches are aligned to the global index (batch j is
 * images [jB, jB + B) ∩ [0, N)), so the images do not depend on sharding or
 * on where a run was interrupted, even on a backend whose arithmetic
 * depends on the batch composition; a shard that starts inside a batch
 * computes that batch whole and keeps its part.
 *
 * Resuming: finished batches go to a spool (fid_spool.h) before anything is
 * reported; rerunning the same command continues after the last committed
 * batch. When every image is there, the .npz is assembled from the spool.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/flowturbo.h"
#include "cli_engine.h"
#include "cli_options.h"
#include "commands.h"
#include "fid_npz.h"
#include "fid_spool.h"
#include "file_util.h"
#include "labels.h"
#include "npy.h"

typedef struct {
    const char *model, *refiner, *vae, *sampler, *out, *out_alias, *shard, *labels_out, *spool;
    int64_t num, seed, stop_after;
    float cfg_scale;
    int batch;
    engine_opts eo;
} fid_args;

/* Parses "i/n" with 0 <= i < n. */
static int parse_shard(const char *s, int64_t *i, int64_t *n) {
    const char *slash = strchr(s, '/');
    if (!slash) return -1;
    char a[32], b[32];
    if ((size_t)(slash - s) >= sizeof a || strlen(slash + 1) >= sizeof b) return -1;
    snprintf(a, sizeof a, "%.*s", (int)(slash - s), s);
    snprintf(b, sizeof b, "%s", slash + 1);
    long long x, y;
    if (parse_int_strict(a, 0, INT32_MAX, &x) != 0 || parse_int_strict(b, 1, INT32_MAX, &y) != 0 || x >= y) return -1;
    *i = x;
    *n = y;
    return 0;
}

static int add_fingerprint(char *cfg, size_t cap, const char *key, const char *path, hx_err *err) {
    size_t n = strlen(cfg);
    if (!path) {
        snprintf(cfg + n, cap - n, "%s: none\n", key);
        return 0;
    }
    uint64_t fp;
    if (file_fingerprint(path, &fp, err) != 0) return -1;
    snprintf(cfg + n, cap - n, "%s: %016llx\n# %s file: %s\n", key, (unsigned long long)fp, key, path_basename(path));
    return 0;
}

/* What the archive writer reads: images from the spool, labels computed (never all in memory). */
typedef struct {
    fid_spool *sp;
    uint64_t seed, first; /* image k of the archive is global image first + k */
    int classes;
} fid_source;

static int spool_images(void *user, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    if (interrupt_requested()) return hx_fail(err, "interrupted");
    return fid_spool_read(((fid_source *)user)->sp, first, n, buf, err);
}

static int computed_labels(void *user, uint64_t first, size_t n, int64_t *out, hx_err *err) {
    (void)err;
    const fid_source *src = user;
    for (size_t i = 0; i < n; i++) out[i] = draw_label(src->seed, src->first + first + i, src->classes);
    return 0;
}

/* --labels-out: int64 [total], streamed in chunks. */
static int write_labels_npy(const char *path, fid_source *src, uint64_t total, hx_err *err) {
    char header[256];
    int64_t shape[1] = {(int64_t)total};
    size_t hl = npy_format_header(header, sizeof header, NPY_I64, 1, shape);
    FILE *f = fopen(path, "wb");
    if (!f) return hx_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int64_t chunk[8192];
    int ok = hl && fwrite(header, 1, hl, f) == hl;
    for (uint64_t done = 0; ok && done < total;) {
        size_t n = total - done < 8192 ? (size_t)(total - done) : 8192;
        computed_labels(src, done, n, chunk, err);
        ok = fwrite(chunk, sizeof chunk[0], n, f) == n;
        done += n;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        remove(path);
        return hx_fail(err, "%s: write error: %s", path, strerror(errno));
    }
    return 0;
}

/* The spool (what is left of it) and the archive must fit the free disk space, checked before sampling. */
static int check_disk_space(const char *out, const fid_spool *sp, uint64_t total, size_t image_bytes, hx_err *err) {
    uint64_t dev_out = 0, dev_spool = 1;
    uint64_t free_out = free_disk_bytes(out, &dev_out), free_spool = free_disk_bytes(sp->dir, &dev_spool);
    uint64_t spool_need = (total - sp->count) * (uint64_t)image_bytes;
    uint64_t out_need = total * (uint64_t)image_bytes + total * 8 + 4096; /* arr_0, labels, zip records */
    if (dev_out == dev_spool) out_need += spool_need;
    char a[32], b[32];
    if (free_out != UINT64_MAX && out_need > free_out)
        return hx_fail(err, "%s needs %s of free disk space (the archive%s), the filesystem has %s", out,
                       format_bytes(out_need, a, sizeof a), dev_out == dev_spool ? " and the spool" : "",
                       format_bytes(free_out, b, sizeof b));
    if (dev_out != dev_spool && free_spool != UINT64_MAX && spool_need > free_spool)
        return hx_fail(err, "the spool %s needs %s of free disk space, the filesystem has %s", sp->dir,
                       format_bytes(spool_need, a, sizeof a), format_bytes(free_spool, b, sizeof b));
    return 0;
}

/* The crash simulation of --stop-after: leave a torn, uncommitted write behind and die by SIGKILL. */
static void simulate_crash(fid_spool *sp) {
    static const char junk[] = "half-written batch";
    if (sp->fd >= 0 && write(sp->fd, junk, sizeof junk) < 0) { /* ignored: we are crashing anyway */
    }
    fprintf(stderr, "flowturbo sample-fid: --stop-after reached at %llu images: simulating a crash\n",
            (unsigned long long)sp->count);
    fflush(stderr);
    kill(getpid(), SIGKILL);
    _exit(137);
}

int cmd_sample_fid(int argc, char **argv) {
    fid_args a;
    memset(&a, 0, sizeof a);
    a.sampler = "H8P9R5";
    a.out = "samples.npz";
    a.num = 50000;
    a.seed = 0;
    a.cfg_scale = 1.5f;
    a.batch = 8;
    a.stop_after = -1;
    engine_opts_init(&a.eo);
    cli_opt opts[] = {
        {'m', "model", OPT_STR, &a.model, "FILE", "velocity predictor weights (required)", 0, 0},
        {0, "refiner", OPT_STR, &a.refiner, "FILE", "velocity refiner weights (samplers with R blocks)", 0, 0},
        {0, "vae", OPT_STR, &a.vae, "FILE", "SD-VAE decoder weights (latent models)", 0, 0},
        {'n', "num", OPT_I64, &a.num, "N", "total images over all shards (default 50000)", 0, 0},
        {'b', "batch", OPT_INT, &a.batch, "B", "images per model batch (default 8); keep it equal across\n"
                                              "shards and resumes for bit-identical images", 0, 0},
        {0, "cfg-scale", OPT_FLOAT, &a.cfg_scale, "F", "classifier-free guidance scale (default 1.5; <= 1: none)", 0, 0},
        {0, "sampler", OPT_STR, &a.sampler, "NAME", "sampler (default H8P9R5)", 0, 0},
        {'s', "seed", OPT_I64, &a.seed, "S", "seed >= 0 (default 0): image k gets noise seed S+k and a label\n"
                                            "drawn from (S, k)", 0, 0},
        {'o', "out", OPT_STR, &a.out, "FILE.npz", "output archive (default samples.npz)", 0, 0},
        {0, "output", OPT_STR, &a.out_alias, "FILE.npz", "same as --out", 1, 0},
        {0, "shard", OPT_STR, &a.shard, "I/N", "make only images [I*num/N, (I+1)*num/N) (default 0/1)", 0, 0},
        {0, "labels-out", OPT_STR, &a.labels_out, "FILE.npy", "also write the labels, int64 [n]", 0, 0},
        {0, "spool", OPT_STR, &a.spool, "DIR", "spool directory for resuming (default OUT.spool)", 0, 0},
        {0, "stop-after", OPT_I64, &a.stop_after, "K", "testing: crash (SIGKILL) once K images are committed", 1, 0},
        ENGINE_OPTIONS(a.eo),
    };
    cli_spec spec = {
        "sample-fid",
        "flowturbo sample-fid -m MODEL [--refiner FILE] [--vae FILE] [--num N] [--shard I/N] [--out FILE.npz] [options]",
        "Samples images for FID evaluation into an npz with arr_0 (uint8 [n,H,W,3], NHWC RGB, as the ADM\n"
        "evaluator reads it) and labels (int64 [n]). Labels are uniform over the classes, a fixed function of\n"
        "(seed, image index); image k uses noise seed S+k. Interrupted runs (Ctrl-C, kill, crash) resume when\n"
        "the same command is run again; shards joined with merge-npz equal an unsharded run byte for byte.",
        "Examples:\n"
        "  flowturbo sample-fid -m sit-xl-2.safetensors --refiner refiner.safetensors --vae vae.safetensors \\\n"
        "      --num 50000 --batch 32 --cfg-scale 1.5 --sampler H8P9R5 --seed 0 --out samples.npz\n"
        "  # on two machines (same options), then join:\n"
        "  flowturbo sample-fid ... --shard 0/2 --out part0.npz\n"
        "  flowturbo sample-fid ... --shard 1/2 --out part1.npz\n"
        "  flowturbo merge-npz -o samples.npz part0.npz part1.npz",
        opts, (int)(sizeof opts / sizeof opts[0]), 0};
    char *pos[1];
    int npos;
    int pr = cli_parse(&spec, argc, argv, pos, &npos);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : EXIT_USAGE;
    if (a.out_alias) a.out = a.out_alias;
    if (!a.model) return cli_usage_error(&spec, "missing -m/--model FILE (the velocity predictor)");
    if (engine_opts_check(&spec, &a.eo)) return EXIT_USAGE;
    ft_sampler_info sc;
    char serr[512];
    if (ft_sampler_describe(a.sampler, &sc, serr, sizeof serr) != FT_OK) return cli_usage_error(&spec, "option '--sampler': %s", serr);
    if (sc.refiner_blocks > 0 && !a.refiner)
        return cli_usage_error(&spec, "sampler %s has %d refiner step(s): pass the refiner with --refiner FILE",
                               sc.name, sc.refiner_blocks);
    if (a.num < 1 || a.num > INT32_MAX) return cli_usage_error(&spec, "option '--num' must be in 1..2147483647, got %lld", (long long)a.num);
    if (a.batch < 1) return cli_usage_error(&spec, "option '--batch' must be >= 1, got %d", a.batch);
    if (cfg_scale_check(&spec, a.cfg_scale)) return EXIT_USAGE;
    if (a.seed < 0)
        return cli_usage_error(&spec, "option '--seed' must be >= 0 (resuming and sharding need a fixed seed), got %lld",
                               (long long)a.seed);
    int64_t shard_i = 0, shard_n = 1;
    if (a.shard && parse_shard(a.shard, &shard_i, &shard_n) != 0)
        return cli_usage_error(&spec, "option '--shard' expects I/N with 0 <= I < N, got '%s'", a.shard);
    uint64_t N = (uint64_t)a.num;
    uint64_t first = N * (uint64_t)shard_i / (uint64_t)shard_n, end = N * (uint64_t)(shard_i + 1) / (uint64_t)shard_n;
    if (end == first)
        return cli_usage_error(&spec, "shard %lld/%lld of %llu images is empty", (long long)shard_i,
                               (long long)shard_n, (unsigned long long)N);
    uint64_t total = end - first;
    char spool_dir[2048];
    if (a.spool) snprintf(spool_dir, sizeof spool_dir, "%s", a.spool);
    else snprintf(spool_dir, sizeof spool_dir, "%s.spool", a.out);
    hx_err err;
    /* where the results go, before any work */
    if (check_output_path("--out", a.out, 0, &err) != 0 || check_output_path("--spool", spool_dir, 1, &err) != 0 ||
        (a.labels_out && check_output_path("--labels-out", a.labels_out, 0, &err) != 0))
        return cli_error("sample-fid", "%s", err.msg);

    int rc = 1;
    fid_spool sp;
    memset(&sp, 0, sizeof sp);
    sp.fd = sp.lock_fd = -1;
    uint8_t *images = NULL;
    int *labels = NULL;
    char config[4096] = "";
    engine_session s;
    interrupt_install();
    if (engine_start(&s, "sample-fid", &a.eo) != 0) return 1;
    if ((rc = engine_load(&s, FT_ROLE_PREDICTOR, a.model, "--model")) != 0) goto out;
    if (a.refiner && (rc = engine_load(&s, FT_ROLE_REFINER, a.refiner, "--refiner")) != 0) goto out;
    if (a.vae && (rc = engine_load(&s, FT_ROLE_VAE, a.vae, "--vae")) != 0) goto out;
    rc = 1;
    ft_output_shape shape;
    ft_model_info mi;
    if (ft_get_output_shape(s.ctx, &shape) != FT_OK || ft_model_get_info(s.ctx, FT_ROLE_PREDICTOR, &mi) != FT_OK) {
        cli_error("sample-fid", "%s", ft_last_error(s.ctx));
        goto out;
    }
    if (!shape.can_make_images) {
        cli_error("sample-fid", "%s is a latent-space model (%d channels): FID samples need a VAE decoder; pass --vae FILE",
                  a.model, shape.latent_channels);
        goto out;
    }
    int S = shape.image_size;
    size_t image_bytes = (size_t)S * S * 3;

    /* everything that decides the bytes of the output */
    snprintf(config, sizeof config, "format: flowturbo-fid 1\n");
    if (add_fingerprint(config, sizeof config, "model", a.model, &err) != 0 ||
        add_fingerprint(config, sizeof config, "refiner", sc.refiner_blocks > 0 ? a.refiner : NULL, &err) != 0 ||
        add_fingerprint(config, sizeof config, "vae", a.vae, &err) != 0) {
        cli_error("sample-fid", "%s", err.msg);
        goto out;
    }
    size_t cl = strlen(config);
    snprintf(config + cl, sizeof config - cl,
             "sampler: %s\ncfg-scale: %.9g\nseed: %lld\nnum: %llu\nshard: %lld/%lld\nrange: %llu %llu\nbatch: %d\n"
             "image: %dx%dx3\nclasses: %d\n# backend: %s\n",
             sc.name, (double)a.cfg_scale, (long long)a.seed, (unsigned long long)N, (long long)shard_i,
             (long long)shard_n, (unsigned long long)first, (unsigned long long)end, a.batch, S, S, mi.num_classes,
             ft_backend_name(s.ctx));
    char state_path[2200];
    snprintf(state_path, sizeof state_path, "%s/state", spool_dir);
    if (path_exists(a.out) && !path_exists(state_path)) {
        cli_error("sample-fid", "%s already exists and is not from a run with a spool in %s; remove it or choose "
                  "another --out", a.out, spool_dir);
        goto out;
    }
    if (fid_spool_open(&sp, spool_dir, config, total, image_bytes, &err) != 0) {
        cli_error("sample-fid", "%s", err.msg);
        goto out;
    }
    fid_source src = {&sp, (uint64_t)a.seed, first, mi.num_classes};

    if (sp.complete) {
        if (!path_exists(a.out)) {
            cli_error("sample-fid", "%s says the run is complete but %s is missing; delete %s to sample again",
                      spool_dir, a.out, spool_dir);
            goto out;
        }
        fprintf(stderr, "[INFO ] %s is already complete (%llu images); nothing to do\n", a.out,
                (unsigned long long)total);
    } else {
        if (check_disk_space(a.out, &sp, total, image_bytes, &err) != 0) {
            cli_error("sample-fid", "%s", err.msg);
            goto out;
        }
        if (sp.resumed)
            fprintf(stderr, "[INFO ] resuming %s at %llu/%llu images\n", spool_dir, (unsigned long long)sp.count,
                    (unsigned long long)total);
        fprintf(stderr, "[INFO ] sampling images %llu..%llu of %llu: %s, cfg %g, seed %lld, batch %d, %dx%d, backend %s\n",
                (unsigned long long)first, (unsigned long long)end - 1, (unsigned long long)N, sc.name,
                (double)a.cfg_scale, (long long)a.seed, a.batch, S, S, ft_backend_name(s.ctx));
        int max_batch = (uint64_t)a.batch < N ? a.batch : (int)N; /* a batch never holds more than the run */
        images = malloc(image_bytes * (size_t)max_batch);
        labels = malloc(sizeof(int) * (size_t)max_batch);
        if (!images || !labels) {
            cli_error("sample-fid", "out of memory for a batch of %d images", max_batch);
            goto out;
        }
        double t0 = now_seconds();
        uint64_t start_count = sp.count;
        progress_bar bar; /* images, not sampler steps */
        pbar_init(&bar, 1);
        pbar_mark(&bar, (int)sp.count);
        while (sp.count < total) {
            uint64_t g = first + sp.count;
            uint64_t bs = g / (uint64_t)a.batch * (uint64_t)a.batch;
            uint64_t be = bs + (uint64_t)a.batch < N ? bs + (uint64_t)a.batch : N;
            int nb = (int)(be - bs);
            for (int i = 0; i < nb; i++) labels[i] = draw_label((uint64_t)a.seed, bs + (uint64_t)i, mi.num_classes);
            ft_generate_params gp;
            ft_generate_params_init(&gp);
            gp.num_images = nb;
            gp.labels = labels;
            gp.seed = (uint64_t)a.seed + bs;
            gp.sampler = sc.name;
            gp.cfg_scale = a.cfg_scale;
            gp.batch_size = nb;
            ft_status st = engine_generate(&s, &gp, NULL, images);
            if (st == FT_ERR_CANCELLED && interrupt_requested()) {
                pbar_break(&bar);
                fprintf(stderr, "flowturbo sample-fid: interrupted at %llu/%llu images; run the same command again to "
                        "resume\n", (unsigned long long)sp.count, (unsigned long long)total);
                rc = EXIT_INTERRUPTED;
                goto out;
            }
            if (st != FT_OK) {
                cli_error("sample-fid", "%s", ft_last_error(s.ctx));
                goto out;
            }
            uint64_t keep_from = g, keep_to = be < end ? be : end;
            if (fid_spool_append(&sp, images + (size_t)(keep_from - bs) * image_bytes, (size_t)(keep_to - keep_from),
                                 &err) != 0) {
                cli_error("sample-fid", "%s", err.msg);
                goto out;
            }
            char eta[64] = "", dur[32];
            if (sp.count > start_count && sp.count < total) {
                double per = (now_seconds() - t0) / (double)(sp.count - start_count);
                snprintf(eta, sizeof eta, "ETA %s", format_duration(per * (double)(total - sp.count), dur, sizeof dur));
            }
            pbar_update(&bar, "sampling", (int)sp.count, (int)total, "img", eta);
            if (a.stop_after >= 0 && sp.count >= (uint64_t)a.stop_after && sp.count < total) simulate_crash(&sp);
            if (interrupt_requested()) {
                pbar_break(&bar);
                fprintf(stderr, "flowturbo sample-fid: interrupted at %llu/%llu images; run the same command again to "
                        "resume\n", (unsigned long long)sp.count, (unsigned long long)total);
                rc = EXIT_INTERRUPTED;
                goto out;
            }
        }
        print_timing("sampling", now_seconds() - t0);
        double t1 = now_seconds();
        if (fid_write_npz(a.out, total, S, spool_images, computed_labels, &src, 0, &err) != 0) {
            if (interrupt_requested()) {
                fprintf(stderr, "flowturbo sample-fid: interrupted while writing %s; every image is in the spool: "
                        "run the same command again to write it\n", a.out);
                rc = EXIT_INTERRUPTED;
            } else {
                cli_error("sample-fid", "%s", err.msg);
            }
            goto out;
        }
        print_timing("writing the npz", now_seconds() - t1);
        if (fid_spool_finish(&sp, &err) != 0) {
            cli_error("sample-fid", "%s", err.msg);
            goto out;
        }
        fprintf(stderr, "[INFO ] wrote %s: arr_0 uint8 [%llu, %d, %d, 3], labels int64 [%llu]\n", a.out,
                (unsigned long long)total, S, S, (unsigned long long)total);
    }
    if (a.labels_out) {
        if (write_labels_npy(a.labels_out, &src, total, &err) != 0) {
            cli_error("sample-fid", "--labels-out: %s", err.msg);
            goto out;
        }
        fprintf(stderr, "[INFO ] wrote %s (int64 [%llu])\n", a.labels_out, (unsigned long long)total);
    }
    rc = 0;
out:
    fid_spool_close(&sp);
    engine_stop(&s);
    free(images);
    free(labels);
    return rc;
}
