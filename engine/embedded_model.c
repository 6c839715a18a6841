/* engine/embedded_model.c — the Fashion-MNIST SiT and refiner compiled into
 * the library (host/models/, 5.7 MB in F16; weights_tool/fashion/ trains
 * them). In the static library this object is linked only into programs that
 * call ft_load_embedded. The Makefile makes it depend on the model files. */
#include <stdint.h>

#include "context.h"
#include "incbin.h"

FT_INCBIN(ft_fashion_sit, "host/models/fashion_sit.safetensors");
FT_INCBIN(ft_fashion_refiner, "host/models/fashion_refiner.safetensors");

ft_status ft_load_embedded(ft_context *ctx, ft_role role) {
    if (!ctx) return FT_ERR_INVALID_ARGUMENT;
    if (role == FT_ROLE_PREDICTOR)
        return ft_load_memory(ctx, role, ft_fashion_sit_start, (size_t)(ft_fashion_sit_end - ft_fashion_sit_start),
                              "embedded:fashion_sit");
    if (role == FT_ROLE_REFINER)
        return ft_load_memory(ctx, role, ft_fashion_refiner_start,
                              (size_t)(ft_fashion_refiner_end - ft_fashion_refiner_start), "embedded:fashion_refiner");
    ft_status st = ctx_busy(ctx);
    if (st != FT_OK) return st;
    if (role == FT_ROLE_VAE)
        return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_UNSUPPORTED,
                                        "there is no embedded VAE: the embedded model works in pixel space"));
    return ctx_failed(ctx, ctx_fail(ctx, FT_ERR_INVALID_ARGUMENT, "ft_load_embedded: unknown role %d", (int)role));
}
