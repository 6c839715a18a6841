/* host/cmd_decode.c — `flowturbo decode`: float32 [N,C,H,W] latents (in the
 * sampler's space, as generate --latents-out writes them) to PNG images with
 * the VAE decoder (ft_decode divides by the scaling factor itself), or the
 * final states of a pixel-space model (-m) mapped straight to pixels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "cli_engine.h"
#include "cli_options.h"
#include "commands.h"
#include "file_util.h"
#include "image_format.h"
#include "image_output.h"
#include "npy.h"
#include "output_names.h"

typedef struct {
    const char *latents, *decoder, *decoder_key;
    int size;
} decode_text_ctx;

static void decode_text(void *user, int k, char *buf, size_t cap) {
    const decode_text_ctx *c = user;
    if (k >= 0)
        snprintf(buf, cap, "decoded latents %s[%d]\nSize: %dx%d, %s: %s, Version: flowturbo %s",
                 path_basename(c->latents), k, c->size, c->size, c->decoder_key, path_basename(c->decoder),
                 ft_version());
    else
        snprintf(buf, cap, "decoded latents %s\nSize: %dx%d, %s: %s, Version: flowturbo %s", path_basename(c->latents),
                 c->size, c->size, c->decoder_key, path_basename(c->decoder), ft_version());
}

int cmd_decode(int argc, char **argv) {
    const char *vae = NULL, *model = NULL, *latents_path = NULL, *output = "output.png";
    int grid = 0, grid_cols = 0, batch = 8;
    engine_opts eo;
    engine_opts_init(&eo);
    cli_opt opts[] = {
        {0, "vae", OPT_STR, &vae, "FILE", "SD-VAE decoder weights, engine safetensors (latent models)", 0, 0},
        {'m', "model", OPT_STR, &model, "FILE", "instead of --vae: the pixel-space predictor whose final states\n"
                                                "the latents are (mapped straight to pixels)", 0, 0},
        {0, "latents", OPT_STR, &latents_path, "FILE.npy", "latents, float32 [N,C,H,W] in the sampler's space (required)", 0, 0},
        {'o', "output", OPT_STR, &output, "PATTERN", "output image (default output.png); the extension picks the\n"
                                                     "format: .png, .jpg/.jpeg or .webp; %d / %03d become the image\n"
                                                     "index, else _<index> goes before the extension when N > 1", 0, 0},
        {0, "grid", OPT_FLAG, &grid, NULL, "write one image with a grid of all images", 0, 0},
        {0, "grid-cols", OPT_INT, &grid_cols, "N", "columns of the grid (default ceil(sqrt(N)))", 0, 0},
        {'b', "batch", OPT_INT, &batch, "N", "latents decoded per call (default 8)", 0, 0},
        ENGINE_OPTIONS(eo),
    };
    cli_spec spec = {"decode", "flowturbo decode --vae FILE --latents FILE.npy [-o PATTERN | --grid] [options]\n"
                     "       flowturbo decode -m PIXEL_MODEL --latents FILE.npy [-o PATTERN | --grid] [options]",
                     "Decodes latents (e.g. from generate --latents-out) to PNG, JPEG or WebP images with the VAE\n"
                     "decoder.",
                     "Example:\n  flowturbo decode --vae sd-vae-ema.safetensors --latents z.npy -o img_%02d.png",
                     opts, (int)(sizeof opts / sizeof opts[0]), 0};
    char *pos[1];
    int npos;
    int pr = cli_parse(&spec, argc, argv, pos, &npos);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : EXIT_USAGE;
    if (!vae && !model) return cli_usage_error(&spec, "missing --vae FILE (the VAE decoder)");
    if (vae && model) return cli_usage_error(&spec, "give --vae (latent models) or -m/--model (pixel-space models), not both");
    if (!latents_path) return cli_usage_error(&spec, "missing --latents FILE.npy");
    if (engine_opts_check(&spec, &eo)) return EXIT_USAGE;
    if (batch < 1) return cli_usage_error(&spec, "option '--batch' must be >= 1, got %d", batch);
    if (cli_seen(&spec, "grid-cols") && grid_cols < 1)
        return cli_usage_error(&spec, "option '--grid-cols' must be >= 1, got %d", grid_cols);
    hx_err err;
    int has_index;
    image_format format;
    if (output_pattern_check(output, &has_index, &err) != 0 || image_format_of(output, &format, &err) != 0)
        return cli_usage_error(&spec, "option '--output': %s", err.msg);
    if (cli_seen(&spec, "grid-cols") && !grid) cli_warn("--grid-cols changes nothing without --grid");
    if (output_pattern_writable("--output", output, &err) != 0) return cli_error("decode", "%s", err.msg);
    npy_array lat;
    if (npy_load(latents_path, &lat, &err) != 0) return cli_error("decode", "--latents: %s", err.msg);
    char sh[128];
    if (lat.h.dtype != NPY_F32 || lat.h.ndim != 4 || lat.h.shape[0] < 1 || lat.h.shape[2] != lat.h.shape[3] ||
        lat.h.shape[2] < 1 || lat.h.shape[0] > 1000000) {
        cli_error("decode", "--latents %s: expected float32 [N, C, S, S] (square latents, N >= 1), got %s %s",
                  latents_path, npy_dtype_name(lat.h.dtype), npy_shape_string(&lat.h, sh, sizeof sh));
        npy_free(&lat);
        return 1;
    }
    int n = (int)lat.h.shape[0], C = (int)lat.h.shape[1], S = (int)lat.h.shape[2];

    int rc = 1;
    uint8_t *images = NULL;
    engine_session s;
    interrupt_install();
    if (engine_start(&s, "decode", &eo) != 0) {
        npy_free(&lat);
        return 1;
    }
    if ((rc = vae ? engine_load(&s, FT_ROLE_VAE, vae, "--vae") : engine_load(&s, FT_ROLE_PREDICTOR, model, "--model")))
        goto out;
    rc = 1;
    ft_model_info vi;
    ft_model_get_info(s.ctx, vae ? FT_ROLE_VAE : FT_ROLE_PREDICTOR, &vi);
    int want_c = vae ? vi.latent_channels : vi.in_channels;
    if (!vae && want_c != 1 && want_c != 3) {
        cli_error("decode", "%s is a latent-space model (%d channels): decoding its latents needs --vae FILE", model,
                  want_c);
        goto out;
    }
    if (want_c != C) {
        cli_error("decode", "--latents %s has %d channels but the %s takes %d", latents_path, C, vae ? "VAE" : "model",
                  want_c);
        goto out;
    }
    if (S > 1024) {
        cli_error("decode", "--latents %s: latent size %d is too large", latents_path, S);
        goto out;
    }
    int size = ft_decoded_size(s.ctx, S);
    size_t img_bytes = (size_t)size * size * 3;
    if ((uint64_t)img_bytes * (uint64_t)n > physical_memory_bytes()) {
        char b1[32], b2[32];
        cli_error("decode", "%d images of %dx%d need %s of memory, more than this machine has (%s)", n, size, size,
                  format_bytes((uint64_t)img_bytes * (uint64_t)n, b1, sizeof b1),
                  format_bytes(physical_memory_bytes(), b2, sizeof b2));
        goto out;
    }
    images = malloc(img_bytes * (size_t)n);
    if (!images) {
        cli_error("decode", "out of memory for %d images of %dx%d", n, size, size);
        goto out;
    }
    double t0 = now_seconds();
    pbar_mark(&s.bar, 0); /* the rate then covers the first batch too: no bar without a measured rate */
    const float *z = lat.data;
    for (int done = 0; done < n;) {
        int b = n - done < batch ? n - done : batch;
        ft_status st = ft_decode(s.ctx, z + (size_t)done * C * S * S, b, S, images + (size_t)done * img_bytes);
        if (st == FT_ERR_CANCELLED && interrupt_requested()) {
            fprintf(stderr, "flowturbo decode: interrupted\n");
            rc = EXIT_INTERRUPTED;
            goto out;
        }
        if (st != FT_OK) {
            cli_error("decode", "%s", ft_last_error(s.ctx));
            goto out;
        }
        done += b;
        pbar_update(&s.bar, "decoding", done, n, "img", NULL);
        if (interrupt_requested() && done < n) {
            pbar_break(&s.bar);
            fprintf(stderr, "flowturbo decode: interrupted\n");
            rc = EXIT_INTERRUPTED;
            goto out;
        }
    }
    print_timing("decoding", now_seconds() - t0);
    t0 = now_seconds();
    decode_text_ctx tc = {latents_path, vae ? vae : model, vae ? "VAE" : "Model", size};
    image_output io = {images, n, size, vae ? vi.out_channels == 1 : C == 1, output, grid, grid_cols, NULL, decode_text, &tc, 0};
    if (write_images(&io, &err) != 0) {
        cli_error("decode", "%s", err.msg);
        goto out;
    }
    print_timing("writing", now_seconds() - t0);
    rc = 0;
out:
    engine_stop(&s);
    npy_free(&lat);
    free(images);
    return rc;
}
