/* tests/reliability/leak_calls.c — the API over and over in one process:
 * context, loads from file and from memory, generation with and without
 * guidance, decoding, sampler checks, failing calls, free. Prints the
 * resident memory after the warm-up and at the end; exit 1 when it grew by
 * more than the limit (a leak or a cache without a bound). Run plain (RSS)
 * and under AddressSanitizer's leak checker by tests/reliability/leaks.sh.
 *   leak_calls [ITERATIONS] [LIMIT_KB] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/flowturbo.h"

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) buf = (free(buf), NULL);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 300;
    long limit = argc > 2 ? atol(argv[2]) : 2048;
    size_t size;
    void *image = read_file("tests/data/sit_b.safetensors", &size);
    if (!image) return fprintf(stderr, "cannot read tests/data/sit_b.safetensors\n"), 1;
    int labels[5] = {0, 1, 2, 0, 1};
    static float lat[5 * 3 * 12 * 12];
    static uint8_t img[5 * 12 * 12 * 3];
    long warm = 0;
    int failures = 0;
    for (int it = 0; it < iters; it++) {
        ft_context_params cp;
        ft_context_params_init(&cp);
        cp.backend = FT_BACKEND_CPU;
        cp.n_threads = 1 + it % 2;
        ft_context *ctx = ft_context_new(&cp);
        ft_generate_params gp;
        ft_generate_params_init(&gp);
        gp.num_images = 5;
        gp.labels = labels;
        gp.sampler = it % 3 ? "H2P1" : "euler:2";
        gp.cfg_scale = it % 2 ? 1.0f : 3.0f;
        gp.batch_size = 1 + it % 5;
        int ok = (it % 2 ? ft_load(ctx, FT_ROLE_PREDICTOR, "tests/data/sit_b.safetensors")
                         : ft_load_memory(ctx, FT_ROLE_PREDICTOR, image, size, "sit_b")) == FT_OK;
        ok = ok && ft_generate(ctx, &gp, lat, img) == FT_OK;
        ok = ok && ft_decode(ctx, lat, 5, 12, img) == FT_OK;
        ok = ok && ft_sampler_check(ctx, "H1P5R3") == FT_OK;
        /* failures must not leak either */
        ok = ok && ft_load(ctx, FT_ROLE_VAE, "tests/data/sit_b.safetensors") != FT_OK;
        ok = ok && ft_load(ctx, FT_ROLE_PREDICTOR, "/nonexistent.safetensors") != FT_OK;
        gp.sampler = "H1P5R3"; /* no refiner loaded */
        ok = ok && ft_generate(ctx, &gp, lat, NULL) != FT_OK;
        failures += !ok;
        ft_context_free(ctx);
        if (it == iters / 10) warm = rss_kb();
    }
    free(image);
    long end = rss_kb();
    printf("%d iterations (%d with unexpected results): resident %ld kB after %d, %ld kB at the end (growth %ld kB, "
           "limit %ld)\n", iters, failures, warm, iters / 10, end, end - warm, limit);
    return failures || end - warm > limit ? 1 : 0;
}
