/*
 * engine/vae.h — the SD-VAE (AutoencoderKL) decoder through the backend ops:
 * z / scaling_factor -> post_quant_conv -> conv_in -> mid (resnet, attention,
 * resnet) -> up blocks (resnets + nearest-2x upsample conv) -> GroupNorm +
 * SiLU -> conv_out. Any block_out_channels / layers_per_block from metadata.
 */
#ifndef FT_VAE_H
#define FT_VAE_H

#include "../kernels/backend.h"
#include "errors.h"
#include "safetensors.h"
#include "weights.h"

typedef struct vae_model vae_model;

typedef struct {
    int latent_channels, out_channels, n_blocks, layers_per_block, groups;
    int block_out_channels[8];
    float scaling_factor;
} vae_config;

ft_status vae_load(ft_backend *be, const st_file *f, vae_model **out, ft_load_progress progress, void *user,
                   ft_err *err);
void vae_free(ft_backend *be, vae_model *m);
const vae_config *vae_get_config(const vae_model *m);
size_t vae_n_params(const vae_model *m);
/* Output side for a latent side (latent_size * 2^(n_blocks - 1)). */
int vae_image_size(const vae_model *m, int latent_size);
/* Bytes of scratch vae_decode needs for n latents of side latent_size on be
 * (on backends with fm ops this also chooses each conv's algorithm). */
size_t vae_scratch_bytes(ft_backend *be, const vae_model *m, int n, int latent_size);
/* img[n, out_channels, S', S'] (f32) from latents [n, latent_channels, s, s]
 * in the sampler's space (divided by scaling_factor inside). */
void vae_decode(ft_backend *be, const vae_model *m, void *scratch, const float *latents, int n, int latent_size,
                float *img);

#endif
