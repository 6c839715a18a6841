/* host/cmd_generate.c — `flowturbo generate`: class-conditional images (and/or
 * final latents) from a predictor, an optional refiner and an optional VAE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../engine/flowturbo.h"
#include "cli_engine.h"
#include "cli_options.h"
#include "commands.h"
#include "file_util.h"
#include "image_format.h"
#include "image_output.h"
#include "image_params.h"
#include "labels.h"
#include "npy.h"
#include "output_names.h"

/* generate keeps every image in memory (sample-fid streams them to disk) */
#define GENERATE_MAX_IMAGES 1000000

/* Rows (seeds) of the embedded model's labelled showcase grid. */
#define DEFAULT_SEEDS 4
#define DEFAULT_SEEDS_STR "4"

typedef struct {
    const char *model, *refiner, *vae, *classes, *sampler, *output, *noise, *latents_out;
    int64_t seed;
    float cfg_scale;
    int batch, num, grid, grid_cols;
    engine_opts eo;
} generate_args;

typedef struct {
    const generate_args *a;
    const ft_context *ctx; /* for class names */
    const int *labels;
    int n;
    uint64_t seed;
    image_params ip;
} params_ctx;

static void image_text(void *user, int k, char *buf, size_t cap) {
    const params_ctx *p = user;
    char first[1024];
    if (k >= 0) {
        const char *name = ft_class_name(p->ctx, p->labels[k]);
        if (name) snprintf(first, sizeof first, "class %d (%s)", p->labels[k], name);
        else snprintf(first, sizeof first, "class %d", p->labels[k]);
        format_image_params(buf, cap, first, &p->ip, p->seed + (uint64_t)k);
        return;
    }
    size_t n = (size_t)snprintf(first, sizeof first, "classes ");
    for (int i = 0; i < p->n && n + 16 < sizeof first; i++)
        n += (size_t)snprintf(first + n, sizeof first - n, "%s%d", i ? "," : "", p->labels[i]);
    if (n + 16 >= sizeof first) snprintf(first + n, sizeof first - n, ",...");
    format_image_params(buf, cap, first, &p->ip, p->seed);
}

/* A seed for -s < 0: time and pid mixed, kept below 2^31 so it is easy to retype. */
static uint64_t random_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return splitmix64_mix((uint64_t)ts.tv_sec * 1000000007ull + (uint64_t)ts.tv_nsec + (uint64_t)getpid()) &
           0x7fffffffull;
}

int cmd_generate(int argc, char **argv) {
    generate_args a;
    memset(&a, 0, sizeof a);
    a.sampler = "H1P5R3";
    a.output = "output.png";
    a.seed = 42;
    a.cfg_scale = 4.0f;
    a.batch = 8;
    engine_opts_init(&a.eo);
    cli_opt opts[] = {
        {'m', "model", OPT_STR, &a.model, "FILE", "velocity predictor (SiT/DiT) weights, engine safetensors (default:\n"
                                                  "the embedded Fashion-MNIST SiT + refiner, a labelled grid of\n"
                                                  "every class x " DEFAULT_SEEDS_STR " seeds)", 0, 0},
        {0, "refiner", OPT_STR, &a.refiner, "FILE", "velocity refiner weights (needed by samplers with R blocks)", 0, 0},
        {0, "vae", OPT_STR, &a.vae, "FILE", "SD-VAE decoder weights (needed for images from latent models)", 0, 0},
        {0, "class", OPT_STR, &a.classes, "LIST", "class ids or names (case-insensitive), comma separated, cycled\n"
                                                  "over the images, or 'random' (drawn from the seed); default\n"
                                                  "0,1,2,... over the images", 0, 0},
        {'n', "num", OPT_INT, &a.num, "N", "images to make (default: the number of classes listed, or 1)", 0, 0},
        {'s', "seed", OPT_I64, &a.seed, "N", "seed; image k uses noise seed N+k (default 42; < 0: random)", 0, 0},
        {0, "sampler", OPT_STR, &a.sampler, "NAME", "H<a>P<b>R<c> (FlowTurbo), heun:N or euler:N, each optionally\n"
                                                    "with a shifted time grid /s<F> (e.g. heun:8/s2); default H1P5R3,\n"
                                                    "for the embedded model " FT_DEFAULT_SAMPLER, 0, 0},
        {0, "cfg-scale", OPT_FLOAT, &a.cfg_scale, "F", "classifier-free guidance scale (default 4.0; <= 1: none)", 0, 0},
        {'b', "batch", OPT_INT, &a.batch, "N", "images per model batch (default 8)", 0, 0},
        {'o', "output", OPT_STR, &a.output, "PATTERN", "output image (default output.png); the extension picks the\n"
                                                       "format: .png, .jpg/.jpeg or .webp; %d / %03d become the image\n"
                                                       "index, else _<index> goes before the extension when n > 1", 0, 0},
        {0, "grid", OPT_FLAG, &a.grid, NULL, "write one image with a grid of all images", 0, 0},
        {0, "grid-cols", OPT_INT, &a.grid_cols, "N", "columns of the grid (default ceil(sqrt(n)))", 0, 0},
        {0, "noise", OPT_STR, &a.noise, "FILE.npy", "initial noise, float32 [N,C,S,S] (replaces the seed's noise)", 0, 0},
        {0, "latents-out", OPT_STR, &a.latents_out, "FILE.npy", "also write the final latents, float32 [N,C,S,S]\n"
                                                                "(alone, without -o/--grid: no images are made)", 0, 0},
        ENGINE_OPTIONS(a.eo),
    };
    cli_spec spec = {"generate", "flowturbo generate [-m MODEL] [--refiner FILE] [--vae FILE] [options]",
                     "Samples class-conditional images with the FlowTurbo sampler and writes PNG, JPEG or WebP\n"
                     "files carrying the generation settings as A1111-style \"parameters\" (PNG text chunk,\n"
                     "Exif UserComment).",
                     "Examples:\n"
                     "  flowturbo generate -m sit-xl-2.safetensors --refiner refiner.safetensors --vae sd-vae-ema.safetensors \\\n"
                     "      --class 207,360,387 -s 0 -o dog_%03d.png\n"
                     "  flowturbo generate --class Trouser,bag -n 4 -o garment_%d.jpg\n"
                     "  flowturbo generate -m sit.safetensors --refiner r.safetensors --class random -n 16 --grid -o grid.png\n"
                     "  flowturbo generate -m sit.safetensors --sampler heun:8 --class 1 -n 4 --latents-out z.npy",
                     opts, (int)(sizeof opts / sizeof opts[0]), 0};
    char *pos[1];
    int npos;
    int pr = cli_parse(&spec, argc, argv, pos, &npos);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : EXIT_USAGE;
    int embedded = !a.model; /* the built-in Fashion-MNIST models */
    if (embedded && !cli_seen(&spec, "sampler")) a.sampler = FT_DEFAULT_SAMPLER;
    if (embedded && a.vae) return cli_usage_error(&spec, "--vae needs -m/--model (the embedded model works in pixels)");
    if (engine_opts_check(&spec, &a.eo)) return EXIT_USAGE;
    ft_sampler_info sc;
    char serr[512];
    if (ft_sampler_describe(a.sampler, &sc, serr, sizeof serr) != FT_OK)
        return cli_usage_error(&spec, "option '--sampler': %s", serr);
    if (a.batch < 1) return cli_usage_error(&spec, "option '--batch' must be >= 1, got %d", a.batch);
    if (cli_seen(&spec, "num") && (a.num < 1 || a.num > GENERATE_MAX_IMAGES))
        return cli_usage_error(&spec, "option '--num' must be in 1..%d (generate keeps every image in memory; "
                               "sample-fid streams any number to disk), got %d", GENERATE_MAX_IMAGES, a.num);
    if (cfg_scale_check(&spec, a.cfg_scale)) return EXIT_USAGE;
    if (cli_seen(&spec, "grid-cols") && a.grid_cols < 1)
        return cli_usage_error(&spec, "option '--grid-cols' must be >= 1, got %d", a.grid_cols);
    hx_err err;
    int has_index;
    image_format format;
    if (output_pattern_check(a.output, &has_index, &err) != 0 || image_format_of(a.output, &format, &err) != 0)
        return cli_usage_error(&spec, "option '--output': %s", err.msg);
    class_list cl;
    memset(&cl, 0, sizeof cl);
    if (a.classes && class_list_parse(a.classes, &cl, &err) != 0)
        return cli_usage_error(&spec, "option '--class': %s", err.msg);
    if (sc.refiner_blocks > 0 && !a.refiner && !embedded) {
        class_list_free(&cl);
        return cli_usage_error(&spec, "sampler %s has %d refiner step(s): pass the refiner with --refiner FILE "
                               "(or pick a sampler without R, e.g. --sampler H%dP%d)",
                               sc.name, sc.refiner_blocks, sc.heun_blocks, sc.pseudo_blocks + sc.refiner_blocks);
    }
    int want_images = !(a.latents_out && !cli_seen(&spec, "output") && !a.grid);
    /* flags that would change nothing: say so, and do not load what is not used */
    a.refiner = refiner_if_used(a.refiner, &sc);
    if (a.vae && !want_images) {
        cli_warn("--vae %s changes nothing: only latents are written (--latents-out without -o or --grid)", a.vae);
        a.vae = NULL;
    }
    if (cli_seen(&spec, "grid-cols") && !a.grid) cli_warn("--grid-cols changes nothing without --grid");
    /* where the results go, before any work */
    if ((want_images && output_pattern_writable("--output", a.output, &err) != 0) ||
        (a.latents_out && check_output_path("--latents-out", a.latents_out, OUTPUT_PATH_MAKE_PARENTS, &err) != 0)) {
        class_list_free(&cl);
        return cli_error("generate", "%s", err.msg);
    }
    uint64_t seed = a.seed >= 0 ? (uint64_t)a.seed : random_seed();
    if (a.seed < 0)
        fprintf(stderr, "[INFO ] random seed %llu (-s %llu makes these images again)\n", (unsigned long long)seed,
                (unsigned long long)seed);

    int rc = 1;
    engine_session s;
    npy_array noise = {{0}, NULL};
    int *labels = NULL;
    float *latents = NULL;
    uint8_t *images = NULL;
    interrupt_install();
    if (engine_start(&s, "generate", &a.eo) != 0) {
        class_list_free(&cl);
        return 1;
    }
    const char *model_name = a.model, *refiner_name = a.refiner;
    if (embedded) {
        if (engine_load_default(&s, FT_ROLE_PREDICTOR, &model_name) != 0) goto out;
        if (!a.refiner && sc.refiner_blocks > 0 && engine_load_default(&s, FT_ROLE_REFINER, &refiner_name) != 0)
            goto out;
    } else if ((rc = engine_load(&s, FT_ROLE_PREDICTOR, a.model, "--model")) != 0) {
        goto out;
    }
    if (a.refiner && (rc = engine_load(&s, FT_ROLE_REFINER, a.refiner, "--refiner")) != 0) goto out;
    if (a.vae && (rc = engine_load(&s, FT_ROLE_VAE, a.vae, "--vae")) != 0) goto out;
    rc = 1;
    ft_model_info mi;
    ft_output_shape shape;
    ft_model_get_info(s.ctx, FT_ROLE_PREDICTOR, &mi);
    if (ft_get_output_shape(s.ctx, &shape) != FT_OK) {
        cli_error("generate", "%s", ft_last_error(s.ctx));
        goto out;
    }
    if (want_images && !shape.can_make_images) {
        cli_error("generate",
                  "%s is a latent-space model (%d channels, %dx%d latents): making images needs a VAE decoder; "
                  "pass --vae FILE (or ask only for the latents with --latents-out FILE.npy)",
                  a.model, shape.latent_channels, shape.latent_size, shape.latent_size);
        goto out;
    }
    if (class_list_resolve(&cl, s.ctx, model_name, &err) != 0) {
        rc = cli_usage_error(&spec, "option '--class': %s", err.msg);
        goto out;
    }
    size_t state = (size_t)shape.latent_channels * shape.latent_size * shape.latent_size;
    if (a.noise) {
        if (npy_load(a.noise, &noise, &err) != 0) {
            cli_error("generate", "--noise: %s", err.msg);
            goto out;
        }
        char sh[128];
        if (noise.h.dtype != NPY_F32 || noise.h.ndim != 4 || noise.h.shape[0] < 1 ||
            noise.h.shape[1] != shape.latent_channels || noise.h.shape[2] != shape.latent_size ||
            noise.h.shape[3] != shape.latent_size) {
            cli_error("generate", "--noise %s: expected float32 [N, %d, %d, %d] for this model, got %s %s", a.noise,
                      shape.latent_channels, shape.latent_size, shape.latent_size, npy_dtype_name(noise.h.dtype),
                      npy_shape_string(&noise.h, sh, sizeof sh));
            goto out;
        }
        if (cli_seen(&spec, "num") && noise.h.shape[0] != a.num) {
            rc = cli_usage_error(&spec, "--num %d but --noise %s holds %lld images", a.num, a.noise,
                                 (long long)noise.h.shape[0]);
            goto out;
        }
        if (noise.h.shape[0] > 1000000) {
            cli_error("generate", "--noise %s: too many images (%lld)", a.noise, (long long)noise.h.shape[0]);
            goto out;
        }
    }
    /* the embedded model's showcase: every class (a column each) x DEFAULT_SEEDS seeds, as a labelled grid */
    int showcase = embedded && !cli_seen(&spec, "num") && !a.noise && cl.n == 0 && !cl.random && !has_index;
    int n = cli_seen(&spec, "num") ? a.num
            : a.noise              ? (int)noise.h.shape[0]
            : cl.n > 0             ? cl.n
            : showcase             ? mi.num_classes * DEFAULT_SEEDS
                                   : 1;
    size_t img_bytes = (size_t)shape.image_size * shape.image_size * 3;
    /* every output stays in memory until it is written: refuse what cannot fit before allocating any of it */
    uint64_t need = (uint64_t)n * ((want_images ? img_bytes : 0) + (a.latents_out ? state * sizeof(float) : 0) + 4);
    if (need > physical_memory_bytes()) {
        char b1[32], b2[32];
        cli_error("generate", "%d images of %dx%d need %s of memory, more than this machine has (%s); ask for fewer "
                  "(-n) or use sample-fid, which streams them to disk", n, shape.image_size, shape.image_size,
                  format_bytes(need, b1, sizeof b1), format_bytes(physical_memory_bytes(), b2, sizeof b2));
        goto out;
    }
    labels = malloc(sizeof(int) * (size_t)n);
    if (!labels) {
        cli_error("generate", "out of memory");
        goto out;
    }
    for (int k = 0; k < n; k++)
        labels[k] = cl.random ? draw_label(seed, (uint64_t)k, mi.num_classes)
                    : cl.n    ? cl.ids[k % cl.n]
                              : k % mi.num_classes;
    if (a.latents_out) latents = malloc(state * sizeof(float) * (size_t)n);
    if (want_images) images = malloc(img_bytes * (size_t)n);
    if ((a.latents_out && !latents) || (want_images && !images)) {
        cli_error("generate", "out of memory for %d images", n);
        goto out;
    }

    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = n;
    gp.labels = labels;
    gp.seed = seed;
    gp.noise = a.noise ? noise.data : NULL;
    gp.sampler = sc.name;
    gp.cfg_scale = a.cfg_scale;
    gp.batch_size = a.batch;
    s.steps_bar = 1;
    fprintf(stderr, "[INFO ] generating %d image%s: %s, cfg %g, seed %llu, backend %s\n", n, n == 1 ? "" : "s",
            sc.name, (double)a.cfg_scale, (unsigned long long)seed, ft_backend_name(s.ctx));
    ft_status st = engine_generate(&s, &gp, latents, images);
    if (st == FT_ERR_CANCELLED && interrupt_requested()) {
        fprintf(stderr, "flowturbo generate: interrupted\n");
        rc = EXIT_INTERRUPTED;
        goto out;
    }
    if (st != FT_OK) {
        cli_error("generate", "%s", ft_last_error(s.ctx));
        goto out;
    }
    print_timing("sampling", s.sampling_s);
    if (want_images) print_timing("decoding", s.decode_s);

    double t_write = now_seconds();
    if (a.latents_out) {
        int64_t dims[4] = {n, shape.latent_channels, shape.latent_size, shape.latent_size};
        if (make_parent_dirs(a.latents_out, &err) != 0 || npy_save(a.latents_out, NPY_F32, 4, dims, latents, &err) != 0) {
            cli_error("generate", "--latents-out: %s", err.msg);
            goto out;
        }
        fprintf(stderr, "[INFO ] wrote %s (float32 [%d, %d, %d, %d])\n", a.latents_out, n, shape.latent_channels,
                shape.latent_size, shape.latent_size);
    }
    if (want_images) {
        params_ctx pc = {&a, s.ctx, labels, n, seed,
                         {sc.steps, sc.name, a.cfg_scale, shape.image_size, shape.image_size, model_name, refiner_name,
                          a.vae, a.noise}};
        const char **names = showcase ? calloc((size_t)mi.num_classes, sizeof *names) : NULL;
        for (int c = 0; names && c < mi.num_classes; c++) names[c] = ft_class_name(s.ctx, c);
        image_output io = {images, n, shape.image_size, !a.vae && shape.latent_channels == 1, a.output,
                           a.grid || showcase, showcase ? mi.num_classes : a.grid_cols, names, image_text, &pc, 0};
        int wrc = write_images(&io, &err);
        free(names);
        if (wrc != 0) {
            cli_error("generate", "%s", err.msg);
            goto out;
        }
    }
    print_timing("writing", now_seconds() - t_write);
    rc = 0;
out:
    engine_stop(&s);
    class_list_free(&cl);
    npy_free(&noise);
    free(labels);
    free(latents);
    free(images);
    return rc;
}
