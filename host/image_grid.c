/* host/image_grid.c — see image_grid.h. */
#include "image_grid.h"

#include <stdlib.h>
#include <string.h>

int grid_default_cols(int n) {
    int c = 1;
    while (c * c < n) c++;
    return c;
}

uint8_t *image_grid(const uint8_t *images, int n, int size, int channels, int cols, int *width, int *height) {
    if (n < 1 || size < 1 || cols < 1) return NULL;
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    size_t w = (size_t)cols * size, h = (size_t)rows * size;
    uint8_t *out = calloc(w * h * (size_t)channels, 1);
    if (!out) return NULL;
    size_t row_bytes = (size_t)size * channels;
    for (int k = 0; k < n; k++) {
        const uint8_t *src = images + (size_t)k * size * row_bytes;
        size_t x0 = (size_t)(k % cols) * size, y0 = (size_t)(k / cols) * size;
        for (int y = 0; y < size; y++)
            memcpy(out + ((y0 + (size_t)y) * w + x0) * channels, src + (size_t)y * row_bytes, row_bytes);
    }
    *width = (int)w;
    *height = (int)h;
    return out;
}
