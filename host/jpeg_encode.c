/* host/jpeg_encode.c — see jpeg_encode.h. */
#include "jpeg_encode.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

int jpeg_encode(const uint8_t *rgb, int w, int h, int grey, int quality, uint8_t **out, size_t *size, hx_err *err) {
    *out = NULL;
    *size = 0;
    tjhandle tj = tjInitCompress();
    if (!tj) return hx_fail(err, "JPEG: cannot start the encoder: %s", tjGetErrorStr2(NULL));
    unsigned char *buf = NULL;
    unsigned long len = 0;
    int rc = tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &buf, &len, grey ? TJSAMP_GRAY : TJSAMP_420, quality,
                         TJFLAG_ACCURATEDCT);
    if (rc != 0) {
        hx_fail(err, "JPEG: %s", tjGetErrorStr2(tj));
        tjFree(buf);
        tjDestroy(tj);
        return -1;
    }
    *out = malloc(len ? len : 1);
    if (*out) memcpy(*out, buf, len);
    tjFree(buf);
    tjDestroy(tj);
    if (!*out) return hx_fail(err, "JPEG: out of memory");
    *size = len;
    return 0;
}
