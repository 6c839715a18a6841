/* host/webp.h — lossy WebP files through libwebp, with an optional EXIF chunk (libwebpmux). Prefixed ftwebp_. */
#ifndef HOST_WEBP_H
#define HOST_WEBP_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

/* pixels: h rows of w * channels bytes (3 = RGB, 1 = gray, stored as RGB); quality 0..100. */
int ftwebp_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int quality,
                 const uint8_t *exif, size_t exif_len, hx_err *err);

#endif
