/* engine/default_model.c — the Fashion-MNIST models compiled into the library (ft_default_model): the
 * host/models safetensors files, embedded with .incbin (the Makefile makes this object depend on them). */
#include <stdint.h>

#include "flowturbo.h"

#define EMBED(sym, file)                                                                          \
    __asm__(".section .rodata\n"                                                                  \
            ".balign 64\n"                                                                        \
            ".global " #sym "_start\n" #sym "_start:\n"                                           \
            ".incbin \"" file "\"\n"                                                              \
            ".global " #sym "_end\n" #sym "_end:\n"                                               \
            ".previous\n");                                                                       \
    extern const uint8_t sym##_start[], sym##_end[]

EMBED(ft_fashion_sit, "host/models/fashion_sit.safetensors");
EMBED(ft_fashion_refiner, "host/models/fashion_refiner.safetensors");

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
