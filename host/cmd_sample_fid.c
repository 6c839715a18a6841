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
 *
 * Several processes (fid_world.h: mpirun, srun, torchrun-style variables):
 * process i of n samples shard i/n into OUT.spool/shard-i-of-n and the
 * shards are merged into OUT (fid_shards.h) — under MPI by rank 0 after
 * every rank is done, otherwise by whichever process finishes last.
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
#include "fid_mpi.h"
#include "fid_npz.h"
#include "fid_progress.h"
#include "fid_ranks.h"
#include "fid_shards.h"
#include "fid_spool.h"
#include "fid_world.h"
#include "file_util.h"
#include "labels.h"
#include "npy.h"

typedef struct {
    const char *model, *refiner, *vae, *sampler, *out, *out_alias, *shard, *labels_out, *spool, *launcher;
    int64_t num, seed, stop_after;
    float cfg_scale;
    int batch;
    engine_opts eo;
} fid_args;

/* Everything that decides the bytes of the output; the spool of each shard records it. */
typedef struct {
    const fid_args *a;
    const char *sampler;
    char head[2048]; /* format line and model fingerprints */
    int image_size, classes;
    const char *backend;
    int64_t shards;
} fid_config;

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

/* The spool configuration of shard i of c->shards. */
static int shard_config(void *user, int i, char *cfg, size_t cap) {
    const fid_config *c = user;
    const fid_args *a = c->a;
    uint64_t N = (uint64_t)a->num, first, end;
    fid_shard_range(N, i, c->shards, &first, &end);
    int n = snprintf(cfg, cap,
                     "%ssampler: %s\ncfg-scale: %.9g\nseed: %lld\nnum: %llu\nshard: %d/%lld\nrange: %llu %llu\n"
                     "batch: %d\nimage: %dx%dx3\nclasses: %d\n# backend: %s\n",
                     c->head, c->sampler, (double)a->cfg_scale, (long long)a->seed, (unsigned long long)N, i,
                     (long long)c->shards, (unsigned long long)first, (unsigned long long)end, a->batch, c->image_size,
                     c->image_size, c->classes, c->backend);
    return n > 0 && (size_t)n < cap ? 0 : -1;
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
static int write_labels_npy(const char *path, fid_source *src, uint64_t total, const char *me) {
    char header[256];
    int64_t shape[1] = {(int64_t)total};
    size_t hl = npy_format_header(header, sizeof header, NPY_I64, 1, shape);
    FILE *f = fopen(path, "wb");
    if (!f) return cli_error(me, "--labels-out: %s: cannot create: %s", path, strerror(errno));
    int64_t chunk[8192];
    hx_err err;
    int ok = hl && fwrite(header, 1, hl, f) == hl;
    for (uint64_t done = 0; ok && done < total;) {
        size_t n = total - done < 8192 ? (size_t)(total - done) : 8192;
        computed_labels(src, done, n, chunk, &err);
        ok = fwrite(chunk, sizeof chunk[0], n, f) == n;
        done += n;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        remove(path);
        return cli_error(me, "--labels-out: %s: write error: %s", path, strerror(errno));
    }
    fprintf(stderr, "[INFO ] wrote %s (int64 [%llu])\n", path, (unsigned long long)total);
    return 0;
}

/* What is left of the spool and the archive (of archive_images) must fit the free disk space, checked before
 * sampling. */
static int check_disk_space(const char *out, const fid_spool *sp, uint64_t archive_images, size_t image_bytes,
                            hx_err *err) {
    uint64_t dev_out = 0, dev_spool = 1;
    uint64_t free_out = free_disk_bytes(out, &dev_out), free_spool = free_disk_bytes(sp->dir, &dev_spool);
    uint64_t spool_need = (sp->total - sp->count) * (uint64_t)image_bytes;
    uint64_t out_need = archive_images * (uint64_t)image_bytes + archive_images * 8 + 4096; /* arr_0, labels, zip */
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

/* Samples the images of [first, end) that the spool lacks. 0, 1 or EXIT_INTERRUPTED. */
static int sample_shard(engine_session *s, const fid_args *a, const fid_config *c, fid_spool *sp, uint64_t first,
                        uint64_t end, fid_progress *p, const char *me) {
    uint64_t N = (uint64_t)a->num, total = end - first;
    size_t image_bytes = (size_t)c->image_size * c->image_size * 3;
    int max_batch = (uint64_t)a->batch < N ? a->batch : (int)N; /* a batch never holds more than the run */
    uint8_t *images = malloc(image_bytes * (size_t)max_batch);
    int *labels = malloc(sizeof(int) * (size_t)max_batch);
    int rc = 1;
    hx_err err;
    if (!images || !labels) {
        cli_error(me, "out of memory for a batch of %d images", max_batch);
        goto out;
    }
    while (sp->count < total) {
        uint64_t g = first + sp->count;
        uint64_t bs = g / (uint64_t)a->batch * (uint64_t)a->batch;
        uint64_t be = bs + (uint64_t)a->batch < N ? bs + (uint64_t)a->batch : N;
        int nb = (int)(be - bs);
        for (int i = 0; i < nb; i++) labels[i] = draw_label((uint64_t)a->seed, bs + (uint64_t)i, c->classes);
        ft_generate_params gp;
        ft_generate_params_init(&gp);
        gp.num_images = nb;
        gp.labels = labels;
        gp.seed = (uint64_t)a->seed + bs;
        gp.sampler = c->sampler;
        gp.cfg_scale = a->cfg_scale;
        gp.batch_size = nb;
        ft_status st = engine_generate(s, &gp, NULL, images);
        if (st == FT_OK) {
            uint64_t keep_from = g, keep_to = be < end ? be : end;
            if (fid_spool_append(sp, images + (size_t)(keep_from - bs) * image_bytes, (size_t)(keep_to - keep_from),
                                 &err) != 0) {
                cli_error(me, "%s", err.msg);
                goto out;
            }
            fid_progress_show(p, sp->count);
            if (a->stop_after >= 0 && sp->count >= (uint64_t)a->stop_after && sp->count < total) simulate_crash(sp);
        } else if (st != FT_ERR_CANCELLED || !interrupt_requested()) {
            cli_error(me, "%s", ft_last_error(s->ctx));
            goto out;
        }
        if (interrupt_requested()) {
            pbar_break(&p->bar);
            fprintf(stderr, "flowturbo %s: interrupted at %llu/%llu images; run the same command again to resume\n", me,
                    (unsigned long long)sp->count, (unsigned long long)total);
            rc = EXIT_INTERRUPTED;
            goto out;
        }
    }
    rc = 0;
out:
    free(images);
    free(labels);
    return rc;
}

/* One process: refuses a spool directory of a multi-process run or an archive from elsewhere, opens the spool. */
static int open_single(const fid_args *a, const fid_config *c, const char *spool_dir, int shard, uint64_t total,
                       fid_spool *sp, const char *me) {
    char config[8192], state_path[2200];
    hx_err err;
    snprintf(state_path, sizeof state_path, "%s/state", spool_dir);
    if (fid_shards_refuse_single(spool_dir, &err) != 0) return cli_error(me, "%s", err.msg);
    if (path_exists(a->out) && !path_exists(state_path))
        return cli_error(me, "%s already exists and is not from a run with a spool in %s; remove it or choose "
                         "another --out", a->out, spool_dir);
    if (shard_config((void *)c, shard, config, sizeof config) != 0)
        return cli_error(me, "the spool configuration is too long (model paths?)");
    if (fid_spool_open(sp, spool_dir, config, total, (size_t)c->image_size * c->image_size * 3, &err) != 0)
        return cli_error(me, "%s", err.msg);
    return 0;
}

/* One process: the archive from its spool. 0, 1 or EXIT_INTERRUPTED. */
static int finish_single(const fid_args *a, const fid_config *c, fid_source *src, double t0, const char *me) {
    hx_err err;
    fid_spool *sp = src->sp;
    print_timing("sampling", now_seconds() - t0);
    double t1 = now_seconds();
    if (fid_write_npz(a->out, sp->total, c->image_size, spool_images, computed_labels, src, 0, &err) != 0) {
        if (!interrupt_requested()) return cli_error(me, "%s", err.msg);
        fprintf(stderr, "flowturbo %s: interrupted while writing %s; every image is in the spool: run the same "
                "command again to write it\n", me, a->out);
        return EXIT_INTERRUPTED;
    }
    print_timing("writing the npz", now_seconds() - t1);
    if (fid_spool_finish(sp, &err) != 0) return cli_error(me, "%s", err.msg);
    fprintf(stderr, "[INFO ] wrote %s: arr_0 uint8 [%llu, %d, %d, 3], labels int64 [%llu]\n", a->out,
            (unsigned long long)sp->total, c->image_size, c->image_size, (unsigned long long)sp->total);
    return 0;
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
    a.launcher = "auto";
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
        {0, "launcher", OPT_STR, &a.launcher, "NAME", "several processes: auto (default), mpi, torchrun, slurm or none;\n"
                                                     "see 'Several processes' below", 0, 0},
        {0, "labels-out", OPT_STR, &a.labels_out, "FILE.npy", "also write the labels, int64 [n]", 0, 0},
        {0, "spool", OPT_STR, &a.spool, "DIR", "spool directory for resuming (default OUT.spool)", 0, 0},
        {0, "stop-after", OPT_I64, &a.stop_after, "K", "testing: crash (SIGKILL) once K images are committed", 1, 0},
        ENGINE_OPTIONS(a.eo),
    };
    char epilog[2048];
    snprintf(epilog, sizeof epilog,
             "Several processes (one per GPU; OUT on a file system they all see): each takes its shard from its\n"
             "launcher, uses CUDA device = its local rank unless --device is given, and the shards are merged\n"
             "into OUT, identical to a one-process run; rerun the same command to resume after a failure.\n"
             "  mpirun -np 8 flowturbo sample-fid ...   rank 0 merges (MPI: %s)\n"
             "  srun flowturbo sample-fid ...           SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID: the last to finish merges\n"
             "  RANK=i WORLD_SIZE=n LOCAL_RANK=j flowturbo sample-fid ...   torchrun-style, as with srun\n"
             "Examples:\n"
             "  flowturbo sample-fid -m sit-xl-2.safetensors --refiner refiner.safetensors --vae vae.safetensors \\\n"
             "      --num 50000 --batch 32 --cfg-scale 1.5 --sampler H8P9R5 --seed 0 --out samples.npz\n"
             "  # on two machines (same options), then join:\n"
             "  flowturbo sample-fid ... --shard 0/2 --out part0.npz\n"
             "  flowturbo sample-fid ... --shard 1/2 --out part1.npz\n"
             "  flowturbo merge-npz -o samples.npz part0.npz part1.npz",
             fid_mpi_built() ? "built in" : "not built in: make MPI=1");
    cli_spec spec = {
        "sample-fid",
        "flowturbo sample-fid -m MODEL [--refiner FILE] [--vae FILE] [--num N] [--shard I/N] [--out FILE.npz] [options]",
        "Samples images for FID evaluation into an npz with arr_0 (uint8 [n,H,W,3], NHWC RGB, as the ADM\n"
        "evaluator reads it) and labels (int64 [n]). Labels are uniform over the classes, a fixed function of\n"
        "(seed, image index); image k uses noise seed S+k. Interrupted runs (Ctrl-C, kill, crash) resume when\n"
        "the same command is run again; shards joined with merge-npz equal an unsharded run byte for byte.",
        epilog, opts, (int)(sizeof opts / sizeof opts[0]), 0};
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
    a.refiner = refiner_if_used(a.refiner, &sc);
    if (a.num < 1 || a.num > INT32_MAX) return cli_usage_error(&spec, "option '--num' must be in 1..2147483647, got %lld", (long long)a.num);
    if (a.batch < 1) return cli_usage_error(&spec, "option '--batch' must be >= 1, got %d", a.batch);
    if (cfg_scale_check(&spec, a.cfg_scale)) return EXIT_USAGE;
    if (a.seed < 0)
        return cli_usage_error(&spec, "option '--seed' must be >= 0 (resuming and sharding need a fixed seed), got %lld",
                               (long long)a.seed);
    int64_t shard_i = 0, shard_n = 1;
    if (a.shard && parse_shard(a.shard, &shard_i, &shard_n) != 0)
        return cli_usage_error(&spec, "option '--shard' expects I/N with 0 <= I < N, got '%s'", a.shard);

    hx_err err;
    fid_world w;
    if (fid_world_detect(&w, a.launcher, &err) != 0) {
        fid_world_end(&w);
        return cli_usage_error(&spec, "%s", err.msg);
    }
    int multi = w.size > 1;
    if (multi && a.shard) {
        fid_world_end(&w);
        return cli_usage_error(&spec, "--shard %s and the launcher (%s) both choose the shard: drop --shard, or pass "
                               "--launcher none", a.shard, w.source);
    }
    if (multi && w.size > a.num) {
        fid_world_end(&w);
        return cli_usage_error(&spec, "%d processes for %lld images: each process needs at least one image", w.size,
                               (long long)a.num);
    }
    if (multi) {
        shard_i = w.rank;
        shard_n = w.size;
        a.eo.quiet = w.rank != 0;
        if (!cli_seen(&spec, "device")) a.eo.device = fid_world_device(&w);
    }
    char me[64] = "sample-fid";
    if (multi) snprintf(me, sizeof me, "sample-fid [rank %d/%d]", w.rank, w.size);
    uint64_t N = (uint64_t)a.num, first, end;
    fid_shard_range(N, shard_i, shard_n, &first, &end);
    if (end == first) {
        fid_world_end(&w);
        return cli_usage_error(&spec, "shard %lld/%lld of %llu images is empty", (long long)shard_i,
                               (long long)shard_n, (unsigned long long)N);
    }
    uint64_t total = end - first;
    char spool_dir[2048];
    if (a.spool) snprintf(spool_dir, sizeof spool_dir, "%s", a.spool);
    else snprintf(spool_dir, sizeof spool_dir, "%s.spool", a.out);
    /* where the results go, before any work */
    if (check_output_path("--out", a.out, 0, &err) != 0 || check_output_path("--spool", spool_dir, OUTPUT_PATH_DIR, &err) != 0 ||
        (a.labels_out && check_output_path("--labels-out", a.labels_out, 0, &err) != 0)) {
        fid_world_end(&w);
        return cli_error(me, "%s", err.msg);
    }

    int rc = 1;
    fid_spool sp;
    memset(&sp, 0, sizeof sp);
    sp.fd = sp.lock_fd = -1;
    fid_source src = {&sp, (uint64_t)a.seed, 0, 1};
    fid_config c;
    memset(&c, 0, sizeof c);
    fid_shards shards = {.root = spool_dir, .out = a.out, .n = (int)shard_n, .num = N, .config = shard_config,
                         .config_user = &c, .lock_fd = -1};
    fid_progress prog;
    fid_progress_start(&prog, 0, NULL, 0, 0, total); /* drawn once the spool is open */
    int spool_ready = 0, write_labels = 0;
    engine_session s;
    interrupt_install();
    if (engine_start(&s, me, &a.eo) != 0) goto out;
    if ((rc = engine_load(&s, FT_ROLE_PREDICTOR, a.model, "--model")) != 0) goto out;
    if (a.refiner && (rc = engine_load(&s, FT_ROLE_REFINER, a.refiner, "--refiner")) != 0) goto out;
    if (a.vae && (rc = engine_load(&s, FT_ROLE_VAE, a.vae, "--vae")) != 0) goto out;
    rc = 1;
    ft_output_shape shape;
    ft_model_info mi;
    if (ft_get_output_shape(s.ctx, &shape) != FT_OK || ft_model_get_info(s.ctx, FT_ROLE_PREDICTOR, &mi) != FT_OK) {
        cli_error(me, "%s", ft_last_error(s.ctx));
        goto out;
    }
    if (!shape.can_make_images) {
        cli_error(me, "%s is a latent-space model (%d channels): FID samples need a VAE decoder; pass --vae FILE",
                  a.model, shape.latent_channels);
        goto out;
    }
    int S = shape.image_size;

    /* everything that decides the bytes of the output */
    c.a = &a;
    c.sampler = sc.name;
    c.image_size = S;
    c.classes = mi.num_classes;
    c.backend = ft_backend_name(s.ctx);
    c.shards = shard_n;
    snprintf(c.head, sizeof c.head, "format: flowturbo-fid 1\n");
    if (add_fingerprint(c.head, sizeof c.head, "model", a.model, &err) != 0 ||
        add_fingerprint(c.head, sizeof c.head, "refiner", sc.refiner_blocks > 0 ? a.refiner : NULL, &err) != 0 ||
        add_fingerprint(c.head, sizeof c.head, "vae", a.vae, &err) != 0) {
        cli_error(me, "%s", err.msg);
        goto out;
    }
    shards.image_size = S;
    if (multi) {
        if (fid_shards_open(&shards, w.rank, &sp, &err) != 0) {
            cli_error(me, "%s", err.msg);
            goto out;
        }
    } else if (open_single(&a, &c, spool_dir, (int)shard_i, total, &sp, me) != 0) {
        goto out;
    }
    spool_ready = 1;
    /* the labels of the archive: this process's range, or all of them for the merge */
    src.first = multi ? 0 : first;
    src.classes = mi.num_classes;
    shards.labels = computed_labels;
    shards.labels_user = &src;

    fid_progress_start(&prog, !a.eo.quiet, multi ? &shards : NULL, w.rank, sp.count, multi ? N : total);
    if (multi && w.rank == 0) {
        char device[32] = "";
        if (strcmp(c.backend, "cuda") == 0) snprintf(device, sizeof device, ", device %d", a.eo.device);
        fprintf(stderr, "[INFO ] %d processes (%s); this is rank 0: images %llu..%llu, backend %s%s\n", w.size,
                w.source, (unsigned long long)first, (unsigned long long)end - 1, c.backend, device);
        if (prog.start > 0 && prog.start < N)
            fprintf(stderr, "[INFO ] resuming %s at %llu/%llu images over all shards\n", spool_dir,
                    (unsigned long long)prog.start, (unsigned long long)N);
    }

    if (sp.complete && !multi) {
        if (!path_exists(a.out)) {
            cli_error(me, "%s says the run is complete but %s is missing; delete %s to sample again", spool_dir, a.out,
                      spool_dir);
            goto out;
        }
        fprintf(stderr, "[INFO ] %s is already complete (%llu images); nothing to do\n", a.out,
                (unsigned long long)total);
    } else if (sp.count < total) {
        if (check_disk_space(a.out, &sp, multi ? N : total, (size_t)S * S * 3, &err) != 0) {
            cli_error(me, "%s", err.msg);
            goto out;
        }
        if (sp.resumed && !multi)
            fprintf(stderr, "[INFO ] resuming %s at %llu/%llu images\n", spool_dir, (unsigned long long)sp.count,
                    (unsigned long long)total);
        if (!a.eo.quiet)
            fprintf(stderr, "[INFO ] sampling images %llu..%llu of %llu: %s, cfg %g, seed %lld, batch %d, %dx%d, backend %s\n",
                    multi ? 0ull : (unsigned long long)first, multi ? N - 1 : (unsigned long long)end - 1,
                    (unsigned long long)N, sc.name, (double)a.cfg_scale, (long long)a.seed, a.batch, S, S, c.backend);
        double t0 = now_seconds();
        if ((rc = sample_shard(&s, &a, &c, &sp, first, end, &prog, me)) != 0) goto out;
        if (!multi && (rc = finish_single(&a, &c, &src, t0, me)) != 0) goto out;
    } else if (!multi && (rc = finish_single(&a, &c, &src, now_seconds(), me)) != 0) {
        goto out; /* every image was committed before a crash during the assembly */
    }
    write_labels = !multi;
    rc = 0;
out:
    fid_spool_close(&sp); /* a shard's spool is closed before the merge looks at it */
    engine_stop(&s);
    if (!multi) pbar_break(&prog.bar);
    if (multi) rc = fid_ranks_finish(spool_ready ? &shards : NULL, &w, rc, &prog, sp.count, me, &write_labels);
    if (rc == 0 && write_labels && a.labels_out) rc = write_labels_npy(a.labels_out, &src, multi ? N : total, me);
    fid_world_end(&w);
    return rc;
}
