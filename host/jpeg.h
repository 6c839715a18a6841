/* host/jpeg.h — 8-bit JPEG files through libjpeg-turbo (libjpeg API), gray or RGB, with an optional APP1 block
 * (the EXIF metadata of exif_comment.h). Prefixed ftjpeg_ so nothing collides with libjpeg's jpeg_*. */
#ifndef HOST_JPEG_H
#define HOST_JPEG_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

/* pixels: h rows of w * channels bytes (3 = RGB, 1 = gray); quality 1..100, chroma not subsampled. */
int ftjpeg_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int quality,
                 const uint8_t *app1, size_t app1_len, hx_err *err);

#endif
