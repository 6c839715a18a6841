/* tests/fuzz/fuzz_safetensors.c — a safetensors file image through the whole
 * loader (ft_load_memory: header, metadata, model config, weight binding and
 * conversion) on a CPU context, as the role picked by the last byte. */
#include <stdlib.h>

#include "../../engine/flowturbo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ft_context *ctx;
    if (!ctx) {
        ft_context_params cp;
        ft_context_params_init(&cp);
        cp.backend = FT_BACKEND_CPU;
        cp.n_threads = 1;
        ctx = ft_context_new(&cp);
        if (!ctx) abort();
    }
    ft_role role = size ? (ft_role)(data[size - 1] % 3) : FT_ROLE_PREDICTOR;
    ft_status st = ft_load_memory(ctx, role, data, size, "fuzz.safetensors");
    if (st != FT_OK && !ft_last_error(ctx)[0]) abort(); /* every failure has a message */
    return 0;
}
