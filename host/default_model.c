/* host/default_model.c — embeds the host/models safetensors files into the binary
 * (the Makefile makes this object depend on them). */
#include "default_model.h"

#include <stdint.h>

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

const void *default_model_data(ft_role role, size_t *size) {
    if (role == FT_ROLE_REFINER) {
        *size = (size_t)(ft_fashion_refiner_end - ft_fashion_refiner_start);
        return ft_fashion_refiner_start;
    }
    *size = (size_t)(ft_fashion_sit_end - ft_fashion_sit_start);
    return ft_fashion_sit_start;
}
