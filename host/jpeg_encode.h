/* host/jpeg_encode.h — JPEG in memory through libjpeg-turbo's TurboJPEG API
 * (the live frames of `flowturbo serve`). */
#ifndef HOST_JPEG_ENCODE_H
#define HOST_JPEG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

/* rgb: h rows of w RGB pixels; grey: store one channel (the image is grey). *out is malloc'd (*size bytes). */
int jpeg_encode(const uint8_t *rgb, int w, int h, int grey, int quality, uint8_t **out, size_t *size, hx_err *err);

#endif
