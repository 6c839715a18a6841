/* host/image_output.h — writing a set of generated images (one file per image
 * from an output pattern, or one grid) in the format of the file extension
 * (image_format.h). */
#ifndef HOST_IMAGE_OUTPUT_H
#define HOST_IMAGE_OUTPUT_H

#include <stdint.h>

#include "errmsg.h"

typedef struct {
    const uint8_t *images; /* n * size * size * 3 (RGB, HWC) */
    int n, size;
    int gray;              /* write channel 0 as 8-bit gray */
    const char *pattern;   /* -o */
    int grid, grid_cols;   /* grid_cols <= 0: ceil(sqrt(n)) */
    const char *const *col_labels; /* grid only: a label above each column (RGB output), or NULL */
    /* "parameters" text of image k (k = -1: the grid) into buf */
    void (*params)(void *user, int k, char *buf, size_t cap);
    void *user;
    int quiet;             /* do not list the files written */
} image_output;

int write_images(const image_output *o, hx_err *err);

#endif
