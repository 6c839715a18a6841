/* host/image_output.c — see image_output.h. */
#include "image_output.h"

#include <stdio.h>
#include <stdlib.h>

#include "file_util.h"
#include "image_format.h"
#include "image_grid.h"
#include "output_names.h"

#define PARAMS_MAX 8192

static int write_one(const char *path, const uint8_t *rgb, int w, int h, int gray, const char *params, hx_err *err) {
    if (make_parent_dirs(path, err) != 0) return -1;
    if (!gray) return image_write(path, rgb, w, h, 3, params, err);
    uint8_t *g = malloc((size_t)w * h);
    if (!g) return hx_fail(err, "out of memory");
    for (size_t i = 0; i < (size_t)w * h; i++) g[i] = rgb[3 * i];
    int rc = image_write(path, g, w, h, 1, params, err);
    free(g);
    return rc;
}

int write_images(const image_output *o, hx_err *err) {
    char *params = malloc(PARAMS_MAX);
    if (!params) return hx_fail(err, "out of memory");
    int rc = 0;
    char name[4096];
    if (o->grid) {
        int w, h, cols = o->grid_cols > 0 ? o->grid_cols : grid_default_cols(o->n);
        uint8_t *g = o->col_labels ? image_grid_labelled(o->images, o->n, o->size, cols, o->col_labels, &w, &h)
                                   : image_grid(o->images, o->n, o->size, 3, cols, &w, &h);
        if (!g) rc = hx_fail(err, "out of memory for the grid");
        if (rc == 0) rc = output_name(o->pattern, 0, 1, name, sizeof name, err);
        if (rc == 0) {
            o->params(o->user, -1, params, PARAMS_MAX);
            rc = write_one(name, g, w, h, o->gray && !o->col_labels, params, err);
        }
        if (rc == 0 && !o->quiet) fprintf(stderr, "[INFO ] wrote %s (%d images, %dx%d grid)\n", name, o->n, w, h);
        free(g);
    } else {
        size_t bytes = (size_t)o->size * o->size * 3;
        for (int k = 0; k < o->n && rc == 0; k++) {
            rc = output_name(o->pattern, k, o->n, name, sizeof name, err);
            if (rc == 0) {
                o->params(o->user, k, params, PARAMS_MAX);
                rc = write_one(name, o->images + (size_t)k * bytes, o->size, o->size, o->gray, params, err);
            }
            if (rc == 0 && !o->quiet) fprintf(stderr, "[INFO ] wrote %s\n", name);
        }
    }
    free(params);
    return rc;
}
