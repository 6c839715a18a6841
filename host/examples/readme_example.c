/* host/examples/readme_example.c — the README's library example as a complete
 * program: eight class-conditional images with the FlowTurbo sampler, written
 * as a binary PPM grid.
 *
 *   readme_example SIT REFINER VAE OUT.ppm   the official SiT-XL/2 + refiner + SD-VAE (ImageNet classes)
 *   readme_example OUT.ppm                   the model embedded in the library (Fashion-MNIST, 10 classes)
 *
 * Build: cc readme_example.c $(pkg-config --cflags --libs flowturbo)           (shared library)
 *        cc readme_example.c $(pkg-config --cflags --libs --static flowturbo)  (static library) */
#include <flowturbo.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: %s [SIT REFINER VAE] OUT.ppm\n", argv[0]);
        return 2;
    }
    ft_context_params cp;
    ft_context_params_init(&cp); /* backend auto, all cores, bf16 on GPU, CUDA graphs on */
    ft_context *ctx = ft_context_new(&cp);
    if (!ctx) return 1;
    int files = argc == 5;
    if (files ? ft_load(ctx, FT_ROLE_PREDICTOR, argv[1]) != FT_OK || ft_load(ctx, FT_ROLE_REFINER, argv[2]) != FT_OK ||
                    ft_load(ctx, FT_ROLE_VAE, argv[3]) != FT_OK
              : ft_load_embedded(ctx, FT_ROLE_PREDICTOR) != FT_OK || ft_load_embedded(ctx, FT_ROLE_REFINER) != FT_OK) {
        fprintf(stderr, "%s\n", ft_last_error(ctx)); /* e.g. "...: missing tensor 'blocks.3.mlp.fc1.weight'" */
        ft_context_free(ctx);
        return 1;
    }
    int imagenet[8] = {207, 980, 387, 974, 88, 972, 928, 279}, fashion[8] = {0, 1, 2, 3, 5, 7, 8, 9};
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 8;
    gp.labels = files ? imagenet : fashion;
    gp.seed = 0;
    gp.sampler = "H1P5R3";
    gp.cfg_scale = 4.0f;
    gp.batch_size = 8;
    ft_output_shape shape;
    ft_get_output_shape(ctx, &shape);
    int S = shape.image_size;
    uint8_t *rgb = malloc((size_t)8 * S * S * 3); /* [n, H, W, 3] */
    ft_status st = rgb ? ft_generate(ctx, &gp, NULL, rgb) : FT_ERR_OUT_OF_MEMORY; /* latents_out may be given too */
    if (st != FT_OK) fprintf(stderr, "generate: %s: %s\n", ft_status_string(st), rgb ? ft_last_error(ctx) : "");
    FILE *f = st == FT_OK ? fopen(argv[argc - 1], "wb") : NULL;
    if (f) { /* a 4 x 2 grid */
        fprintf(f, "P6\n%d %d\n255\n", 4 * S, 2 * S);
        for (int row = 0; row < 2; row++)
            for (int y = 0; y < S; y++)
                for (int col = 0; col < 4; col++)
                    fwrite(rgb + ((size_t)(row * 4 + col) * S * S + (size_t)y * S) * 3, 3, (size_t)S, f);
        if (fclose(f) != 0) st = FT_ERR_IO;
    } else if (st == FT_OK) {
        perror(argv[argc - 1]);
        st = FT_ERR_IO;
    }
    free(rgb);
    ft_context_free(ctx);
    return st == FT_OK ? 0 : 1;
}
