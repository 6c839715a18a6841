/* host/image_format.h — the image file format named by an output file's extension (.png, .jpg/.jpeg, .webp;
 * any case), and writing an image in it with the generation parameters as metadata: a PNG "parameters" tEXt
 * chunk, the Exif UserComment in JPEG (APP1) and WebP (EXIF chunk), as A1111-style tools read them. JPEG and
 * WebP are lossy at quality IMAGE_QUALITY. */
#ifndef HOST_IMAGE_FORMAT_H
#define HOST_IMAGE_FORMAT_H

#include <stdint.h>

#include "errmsg.h"

#define IMAGE_QUALITY 90

typedef enum { IMAGE_PNG, IMAGE_JPEG, IMAGE_WEBP } image_format;

/* The format of path's extension; -1 with a message listing the writable ones otherwise. */
int image_format_of(const char *path, image_format *fmt, hx_err *err);
/* pixels: h rows of w * channels bytes (1 = gray, 3 = RGB); params may be NULL. */
int image_write(const char *path, const uint8_t *pixels, int w, int h, int channels, const char *params, hx_err *err);

#endif
