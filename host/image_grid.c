/* host/image_grid.c — see image_grid.h. */
#include "image_grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "label_font.h"

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

/* Tiles of small images are enlarged (nearest) to at least this many pixels
 * so that a 5x7-font label fits above each column. */
#define LABELLED_MIN_TILE 96
#define LABELLED_GAP 2

uint8_t *image_grid_labelled(const uint8_t *images, int n, int size, int cols, const char *const *col_labels,
                             int *width, int *height) {
    if (n < 1 || size < 1 || cols < 1) return NULL;
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int up = size < LABELLED_MIN_TILE ? (LABELLED_MIN_TILE + size - 1) / size : 1;
    int tile = size * up, text_scale = tile >= 2 * LABELLED_MIN_TILE ? 2 : 1;
    int header = FONT_H * text_scale + 8, pitch = tile + LABELLED_GAP;
    size_t w = (size_t)cols * pitch + LABELLED_GAP, h = (size_t)header + (size_t)rows * pitch + LABELLED_GAP;
    uint8_t *out = malloc(w * h * 3);
    if (!out) return NULL;
    memset(out, 0x20, w * h * 3); /* dark grey background and gaps */
    for (int k = 0; k < n; k++) {
        const uint8_t *src = images + (size_t)k * size * size * 3;
        size_t x0 = LABELLED_GAP + (size_t)(k % cols) * pitch, y0 = (size_t)header + (size_t)(k / cols) * pitch;
        for (int y = 0; y < tile; y++)
            for (int x = 0; x < tile; x++)
                memcpy(out + ((y0 + (size_t)y) * w + x0 + (size_t)x) * 3, src + ((size_t)(y / up) * size + x / up) * 3, 3);
    }
    static const uint8_t white[3] = {235, 235, 235};
    for (int c = 0; c < cols && col_labels; c++) {
        if (!col_labels[c]) continue;
        char text[64];
        int max_chars = (tile + 1) / (FONT_ADVANCE * text_scale); /* cut what does not fit the column */
        snprintf(text, sizeof text, "%.*s", max_chars < 63 ? max_chars : 63, col_labels[c]);
        int tw = font_text_width(text, text_scale);
        font_draw(out, (int)w, (int)h, LABELLED_GAP + c * pitch + (tile - tw) / 2, 4, text, text_scale, white);
    }
    *width = (int)w;
    *height = (int)h;
    return out;
}
