/* host/image_grid.h — tiles square images into one grid image (row-major,
 * unused cells black). */
#ifndef HOST_IMAGE_GRID_H
#define HOST_IMAGE_GRID_H

#include <stdint.h>

/* Default columns for n images: ceil(sqrt(n)). */
int grid_default_cols(int n);
/* images: n * size * size * channels bytes (HWC). Returns a malloc'd
 * (rows*size) x (cols*size) x channels image and its width/height, or NULL. */
uint8_t *image_grid(const uint8_t *images, int n, int size, int channels, int cols, int *width, int *height);

/* The same as RGB with a label above each column (col_labels[c], may be NULL):
 * small tiles are enlarged so the labels fit, tiles are separated by thin gaps. */
uint8_t *image_grid_labelled(const uint8_t *images, int n, int size, int cols, const char *const *col_labels,
                             int *width, int *height);

#endif
