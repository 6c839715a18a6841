/* engine/vae.c — placeholder until the VAE decoder lands (issue 3). */
#include "vae.h"

ft_status vae_load(ft_backend *be, const st_file *f, vae_model **out, ft_load_progress progress, void *user,
                   ft_err *err) {
    (void)be;
    (void)progress;
    (void)user;
    *out = NULL;
    return ft_fail(err, FT_ERR_UNSUPPORTED, "%s: VAE decoding is not implemented in this build", f->path);
}

void vae_free(ft_backend *be, vae_model *m) {
    (void)be;
    (void)m;
}

const vae_config *vae_get_config(const vae_model *m) {
    (void)m;
    return NULL;
}

size_t vae_n_params(const vae_model *m) {
    (void)m;
    return 0;
}

int vae_image_size(const vae_model *m, int latent_size) {
    (void)m;
    return latent_size;
}

size_t vae_scratch_bytes(const vae_model *m, int n, int latent_size) {
    (void)m;
    (void)n;
    (void)latent_size;
    return 0;
}

void vae_decode(ft_backend *be, const vae_model *m, void *scratch, const float *latents, int n, int latent_size,
                float *img) {
    (void)m;
    (void)scratch;
    (void)latents;
    (void)n;
    (void)latent_size;
    (void)img;
    ft_backend_fail(be, "VAE decoding is not implemented in this build");
}
