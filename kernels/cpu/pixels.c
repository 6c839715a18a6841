/* kernels/cpu/pixels.c — model output to pitched RGBA frames (render targets). */
#include "../common/pixels.h"

#include "cpu_ops.h"

void cpu_to_pixels(ft_backend *be, void *dst, ft_pixel_format format, size_t row_pitch, size_t image_pitch,
                   const float *img, int N, int C, int S) {
    (void)be;
    size_t plane = (size_t)S * S;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * plane * 4 > CPU_PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int y = 0; y < S; y++) {
            const float *ch[3];
            for (int c = 0; c < 3; c++) ch[c] = img + ((size_t)n * C + (C == 1 ? 0 : c)) * plane + (size_t)y * S;
            char *row = (char *)dst + (size_t)n * image_pitch + (size_t)y * row_pitch;
            if (format == FT_PIXELS_RGBA_F32) {
                float *px = (float *)row;
                for (int x = 0; x < S; x++) {
                    for (int c = 0; c < 3; c++) px[4 * x + c] = ft_pixel_unit(ch[c][x]);
                    px[4 * x + 3] = 1.0f;
                }
            } else {
                uint8_t *px = (uint8_t *)row;
                for (int x = 0; x < S; x++) {
                    for (int c = 0; c < 3; c++) px[4 * x + c] = ft_pixel_u8(ch[c][x]);
                    px[4 * x + 3] = 255;
                }
            }
        }
}
