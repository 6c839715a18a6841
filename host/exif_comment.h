/* host/exif_comment.h — an EXIF block holding a text as the Exif UserComment, built with libexif: where
 * A1111-style tools keep the generation "parameters" of JPEG and WebP files ("UNICODE\0" + UTF-16BE, big-endian
 * TIFF, as A1111 writes it with piexif). */
#ifndef HOST_EXIF_COMMENT_H
#define HOST_EXIF_COMMENT_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

/* *out (malloc'd, *len bytes): the TIFF structure, prefixed with "Exif\0\0" when jpeg_header (a JPEG APP1
 * payload; a WebP EXIF chunk has no prefix). text is UTF-8 (invalid bytes become U+FFFD). */
int exif_user_comment(const char *text, int jpeg_header, uint8_t **out, size_t *len, hx_err *err);

#endif
