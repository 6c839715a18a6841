/* tests/fid_lanes_check.c — see fid_lanes_check.h. */
#include "fid_lanes_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../host/fid_lanes.h"
#include "test.h"

/* Images [0, n) in batches of B (the last one may be partial: a second plan), submitted in order as sample-fid
 * does: image k has label (3k + 1) % 10 and noise seed 4242 + k; taken into out. */
typedef struct {
    int n, B, labels[64];
    const char *sampler;
    uint8_t *out;
    size_t image_bytes;
} fid_case;

static int fid_case_make(void *user, int64_t k, ft_generate_params *gp) {
    fid_case *c = user;
    int first = (int)k * c->B, nb = c->n - first < c->B ? c->n - first : c->B;
    for (int i = 0; i < nb; i++) c->labels[i] = (3 * (first + i) + 1) % 10;
    ft_generate_params_init(gp);
    gp->num_images = gp->batch_size = nb;
    gp->labels = c->labels;
    gp->seed = 4242 + (uint64_t)first;
    gp->sampler = c->sampler;
    gp->cfg_scale = 1.5f;
    return 0;
}

static int fid_case_take(void *user, int64_t k, const uint8_t *images, int n) {
    fid_case *c = user;
    memcpy(c->out + (size_t)k * c->B * c->image_bytes, images, (size_t)n * c->image_bytes);
    return 0;
}

static int fid_lanes_case(ft_context *models, int n_lanes, fid_case *c) {
    fid_lanes l;
    hx_err err;
    int ok = fid_lanes_open(&l, models, NULL, n_lanes, c->B, c->image_bytes, &err) == 0 &&
             fid_lanes_run(&l, (c->n + c->B - 1) / c->B, fid_case_make, fid_case_take, c, &err) == 0;
    if (!ok) test_note("%d lane(s): %s", n_lanes, err.msg);
    fid_lanes_close(&l);
    return ok;
}

/* n images through two lanes (double-buffered: two contexts on shared models, two streams, pinned buffers)
 * and through one lane: byte for byte equal, and not vacuous. */
int fid_lanes_double_equals_single(ft_backend_kind backend, const char *pred, const char *ref, const char *vae,
                                   const char *sampler, int n, int B, int image_size) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = backend;
    ft_context *models = ft_context_new(&cp);
    if (!models) return 0;
    int ok = ft_load(models, FT_ROLE_PREDICTOR, pred) == FT_OK && (!ref || ft_load(models, FT_ROLE_REFINER, ref) == FT_OK) &&
             (!vae || ft_load(models, FT_ROLE_VAE, vae) == FT_OK);
    if (!ok) test_note("loading: %s", ft_last_error(models));
    size_t image_bytes = (size_t)image_size * image_size * 3, bytes = (size_t)n * image_bytes;
    uint8_t *one = malloc(bytes), *two = malloc(bytes);
    ok = ok && one && two;
    if (ok) memset(one, 0x11, bytes), memset(two, 0x22, bytes);
    fid_case c1 = {n, B, {0}, sampler, one, image_bytes}, c2 = {n, B, {0}, sampler, two, image_bytes};
    time_t t0 = time(NULL);
    ok = ok && fid_lanes_case(models, 1, &c1) && fid_lanes_case(models, 2, &c2);
    if (ok) {
        size_t first_diff = 0;
        while (first_diff < bytes && one[first_diff] == two[first_diff]) first_diff++;
        if (first_diff < bytes) {
            test_note("%s, %d images: two lanes differ from one lane at image %zu byte %zu", sampler, n,
                      first_diff / image_bytes, first_diff % image_bytes);
            ok = 0;
        }
        /* one lane also equals ft_generate on the models' own context (sample-fid's path before lanes: a spool
         * begun there resumes with the same bytes); for the short case only (the emulator's time) */
        uint8_t *direct = n <= 8 ? malloc(bytes) : NULL;
        for (int k = 0; direct && ok && k * B < n; k++) {
            ft_generate_params gp;
            fid_case_make(&c1, k, &gp);
            if (ft_generate(models, &gp, NULL, direct + (size_t)k * B * image_bytes) != FT_OK) {
                test_note("ft_generate: %s", ft_last_error(models));
                ok = 0;
            }
        }
        if (direct && ok && memcmp(direct, one, bytes) != 0) {
            test_note("%s: one lane differs from ft_generate on the models' context", sampler);
            ok = 0;
        }
        free(direct);
        /* not vacuous: batches differ from each other (seeds and labels reach the images) */
        if (n > B && memcmp(one, one + (size_t)B * image_bytes, (size_t)B * image_bytes) == 0) {
            test_note("%s: batch 1 repeats batch 0: the requests did not reach the images", sampler);
            ok = 0;
        }
        if (ok)
            test_note("  %s, %d images of %dx%d (batches of %d, cfg 1.5%s): two lanes == one lane (%.0f s)", sampler,
                      n, image_size, image_size, B, vae ? ", + VAE" : ", pixel space", difftime(time(NULL), t0));
    }
    free(one), free(two);
    ft_context_free(models);
    return ok;
}
