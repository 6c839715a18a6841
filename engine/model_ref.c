/* engine/model_ref.c — reference-counted loaded models (see model_ref.h). */
#include "model_ref.h"

#include <stdlib.h>

model_ref *model_ref_wrap_sit(ft_backend *be, ft_role role, const sit_model *m) {
    model_ref *r = calloc(1, sizeof *r);
    if (!r) {
        sit_model copy = *m;
        sit_free(be, &copy);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->role = role;
    r->sit = *m;
    return r;
}

model_ref *model_ref_wrap_vae(ft_backend *be, vae_model *vae) {
    model_ref *r = calloc(1, sizeof *r);
    if (!r) {
        vae_free(be, vae);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->role = FT_ROLE_VAE;
    r->vae = vae;
    return r;
}

model_ref *model_ref_retain(model_ref *m) {
    if (m) atomic_fetch_add(&m->refs, 1);
    return m;
}

void model_ref_release(ft_backend *be, model_ref *m) {
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    if (m->role == FT_ROLE_VAE) vae_free(be, m->vae);
    else sit_free(be, &m->sit);
    free(m);
}
