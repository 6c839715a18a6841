/* tests/fuzz/fuzz_sampler.c — sampler strings ("H1P5R3", "heun:8", ...). */
#include <stdlib.h>
#include <string.h>

#include "../../engine/flowturbo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ft_sampler_info info;
    char err[256];
    if (ft_sampler_describe(text, &info, err, sizeof err) == FT_OK) {
        if (info.steps < 1 || info.heun_blocks + info.pseudo_blocks + info.refiner_blocks > info.steps) abort();
        /* the canonical name parses to the same sampler */
        ft_sampler_info again;
        if (ft_sampler_describe(info.name, &again, err, sizeof err) != FT_OK || memcmp(&info, &again, sizeof info))
            abort();
    } else if (!memchr(err, 0, sizeof err) || !err[0]) {
        abort();
    }
    free(text);
    return 0;
}
