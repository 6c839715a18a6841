/* engine/incbin.h — embeds a file of the source tree in the object (read-only
 * data, 64-byte aligned) as sym_start[] .. sym_end[]; the path is relative
 * to the directory make runs in (the repository root), and the Makefile
 * lists the file as a dependency of the object. */
#ifndef FT_INCBIN_H
#define FT_INCBIN_H

#include <stdint.h>

#define FT_INCBIN(sym, file)                                                                      \
    __asm__(".section .rodata\n"                                                                  \
            ".balign 64\n"                                                                        \
            ".global " #sym "_start\n" #sym "_start:\n"                                           \
            ".incbin \"" file "\"\n"                                                              \
            ".global " #sym "_end\n" #sym "_end:\n"                                               \
            ".byte 0\n"                                                                           \
            ".previous\n");                                                                       \
    extern const uint8_t sym##_start[], sym##_end[]

#endif
