/*
 * engine/model_ref.h — a loaded model shared by contexts: the weights of one
 * role with a reference count, so ft_context_new_shared can hand the same
 * weights to several contexts and the last one to let go frees them.
 */
#ifndef FT_MODEL_REF_H
#define FT_MODEL_REF_H

#include <stdatomic.h>

#include "sit.h"
#include "vae.h"

typedef struct {
    atomic_int refs;
    ft_role role;
    sit_model sit;  /* FT_ROLE_PREDICTOR / FT_ROLE_REFINER */
    vae_model *vae; /* FT_ROLE_VAE */
} model_ref;

/* Wraps a loaded model (one reference); NULL when the host is out of memory (the model is then freed). */
model_ref *model_ref_wrap_sit(ft_backend *be, ft_role role, const sit_model *m);
model_ref *model_ref_wrap_vae(ft_backend *be, vae_model *vae);
model_ref *model_ref_retain(model_ref *m);
/* Drops a reference; the last one frees the weights with be (any backend of the same device). */
void model_ref_release(ft_backend *be, model_ref *m);

#endif
