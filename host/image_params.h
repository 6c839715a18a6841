/*
 * host/image_params.h — the A1111-style "parameters" text stored in PNGs:
 *   class 3
 *   Steps: 9, Sampler: H1P5R3, CFG scale: 4, Seed: 42, Size: 256x256,
 *   Model: sit.safetensors, Refiner: refiner.safetensors, VAE: vae.safetensors,
 *   Version: flowturbo 0.1.0
 * (the second part on one line; Refiner/VAE only when loaded).
 */
#ifndef HOST_IMAGE_PARAMS_H
#define HOST_IMAGE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int steps;
    const char *sampler;  /* canonical name */
    float cfg_scale;
    int width, height;
    const char *model;    /* paths (basenames are written) or NULL */
    const char *refiner;
    const char *vae;
    const char *noise;    /* --noise file or NULL */
} image_params;

/* first_line: "class 3" (or "classes 0,1,2" for grids); seed: the image's seed. */
void format_image_params(char *buf, size_t cap, const char *first_line, const image_params *p, uint64_t seed);

#endif
