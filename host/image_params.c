/* host/image_params.c — see image_params.h. */
#include "image_params.h"

#include <stdio.h>

#include "../engine/flowturbo.h"
#include "file_util.h"

void format_image_params(char *buf, size_t cap, const char *first_line, const image_params *p, uint64_t seed) {
    size_t n = 0;
#define ADD(...)                                                                                                 \
    do {                                                                                                         \
        if (n < cap) {                                                                                           \
            int k = snprintf(buf + n, cap - n, __VA_ARGS__);                                                     \
            if (k > 0) n += (size_t)k;                                                                           \
        }                                                                                                        \
    } while (0)
    ADD("%s\n", first_line);
    ADD("Steps: %d, Sampler: %s, CFG scale: %g, Seed: %llu, Size: %dx%d", p->steps, p->sampler,
        (double)p->cfg_scale, (unsigned long long)seed, p->width, p->height);
    if (p->model) ADD(", Model: %s", path_basename(p->model));
    if (p->refiner) ADD(", Refiner: %s", path_basename(p->refiner));
    if (p->vae) ADD(", VAE: %s", path_basename(p->vae));
    if (p->noise) ADD(", Noise: %s", path_basename(p->noise));
    ADD(", Version: flowturbo %s", ft_version());
#undef ADD
}
