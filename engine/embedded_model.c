/* engine/embedded_model.c — the Fashion-MNIST SiT and refiner compiled into
 * the library (host/models/, 5.7 MB in F16; weights_tool/fashion/ trains
 * them): their bytes (ft_default_model) and loading them (ft_load_embedded).
 * In the static library this object is linked only into programs that call
 * one of the two. The Makefile makes it depend on the model files. */
#include <stdint.h>

#include "context.h"
#include "incbin.h"

FT_INCBIN(ft_fashion_sit, "host/models/fashion_sit.safetensors");
FT_INCBIN(ft_fashion_refiner, "host/models/fashion_refiner.safetensors");

const void *ft_default_model(ft_role role, size_t *size, const char **name) {
    const uint8_t *start = NULL, *end = NULL;
    const char *what = NULL;
    if (role == FT_ROLE_PREDICTOR) start = ft_fashion_sit_start, end = ft_fashion_sit_end, what = FT_DEFAULT_PREDICTOR_NAME;
    if (role == FT_ROLE_REFINER)
        start = ft_fashion_refiner_start, end = ft_fashion_refiner_end, what = FT_DEFAULT_REFINER_NAME;
    if (size) *size = start ? (size_t)(end - start) : 0;
    if (name) *name = what;
    return start;
}

ft_status ft_load_embedded(ft_context *ctx, ft_role role) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    size_t size;
    const char *name;
    const void *data = ft_default_model(role, &size, &name);
    if (data) return ft_load_memory(ctx, role, data, size, name);
    ft_status st = ctx_busy(ctx);
    if (st != FT_OK) return st;
    if (role == FT_ROLE_VAE)
        return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_UNSUPPORTED,
                                        "there is no embedded VAE: the embedded model works in pixel space"));
    return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_load_embedded: unknown role %d", (int)role));
}
