/* The library example of README.md, as a complete program (tests/python/test_docs.py checks that the two agree,
 * builds it with pkg-config and runs it). With three model files it samples ImageNet classes; without, the
 * Fashion-MNIST models compiled into the library. It writes the images, stacked, as readme_example.ppm. */
#include <flowturbo.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 1 && argc != 4) {
        fprintf(stderr, "usage: %s [PREDICTOR.safetensors REFINER.safetensors VAE.safetensors]\n", argv[0]);
        return 2;
    }
    ft_context_params cp;
    ft_context_params_init(&cp);              /* backend auto, all cores, bf16 on GPU, CUDA graphs on */
    ft_context *ctx = ft_context_new(&cp);
    if (!ctx) return 1;
    ft_status st = FT_OK;
    for (int role = 0; role < (argc == 4 ? 3 : 2) && st == FT_OK; role++) {
        if (argc == 4) {                      /* FT_ROLE_PREDICTOR, FT_ROLE_REFINER, FT_ROLE_VAE */
            st = ft_load(ctx, (ft_role)role, argv[1 + role]);
        } else {
            size_t size;
            const char *name;
            const void *data = ft_default_model((ft_role)role, &size, &name);
            st = ft_load_memory(ctx, (ft_role)role, data, size, name);
        }
    }
    if (st != FT_OK) {
        fprintf(stderr, "%s\n", ft_last_error(ctx));   /* e.g. "...: missing tensor 'blocks.3.mlp.fc1.weight'" */
        ft_context_free(ctx);
        return 1;
    }
    int labels[8] = {207, 980, 387, 974, 88, 972, 928, 279};   /* ImageNet */
    for (int i = 0; argc == 1 && i < 8; i++) labels[i] = i;    /* Fashion-MNIST: T-shirt/top .. Sneaker */
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 8; gp.labels = labels; gp.seed = 0;
    gp.sampler = "H1P5R3"; gp.cfg_scale = 4.0f; gp.batch_size = 8;
    ft_output_shape shape;
    ft_get_output_shape(ctx, &shape);
    size_t bytes = (size_t)shape.image_size * shape.image_size * 3;
    uint8_t *rgb = malloc(8 * bytes);                  /* [n, H, W, 3] */
    st = rgb ? ft_generate(ctx, &gp, NULL, rgb) : FT_ERR_OUT_OF_MEMORY;   /* latents_out may be given too */
    FILE *f = st == FT_OK ? fopen("readme_example.ppm", "wb") : NULL;
    if (f) {
        fprintf(f, "P6\n%d %d\n255\n", shape.image_size, 8 * shape.image_size);
        fwrite(rgb, 1, 8 * bytes, f);
        fclose(f);
        printf("%s backend: 8 images of %dx%d in readme_example.ppm\n", ft_backend_name(ctx), shape.image_size,
               shape.image_size);
    } else {
        fprintf(stderr, "%s\n", st == FT_OK ? "cannot write readme_example.ppm" : ft_last_error(ctx));
    }
    free(rgb);
    ft_context_free(ctx);
    return f ? 0 : 1;
}
