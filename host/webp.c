/* host/webp.c — WebP writing with libwebp + libwebpmux (see webp.h). */
#include "webp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>
#include <webp/mux.h>

/* The WebP bitstream of the pixels (gray expanded to RGB); *out is freed with WebPFree. */
static size_t encode(const uint8_t *pixels, int w, int h, int channels, int quality, uint8_t **out) {
    if (channels == 3) return WebPEncodeRGB(pixels, w, h, w * 3, (float)quality, out);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) return 0;
    for (size_t i = 0; i < (size_t)w * h; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = pixels[i];
    size_t n = WebPEncodeRGB(rgb, w, h, w * 3, (float)quality, out);
    free(rgb);
    return n;
}

int ftwebp_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int quality,
                 const uint8_t *exif, size_t exif_len, hx_err *err) {
    if (w < 1 || h < 1 || w > WEBP_MAX_DIMENSION || h > WEBP_MAX_DIMENSION || (channels != 1 && channels != 3))
        return hx_fail(err, "%s: cannot write a %dx%d image with %d channels as WebP", path, w, h, channels);
    uint8_t *bitstream = NULL;
    size_t n = encode(pixels, w, h, channels, quality, &bitstream);
    if (!n) {
        WebPFree(bitstream);
        return hx_fail(err, "%s: WebP encoding failed", path);
    }
    WebPData image = {bitstream, n}, meta = {exif, exif_len}, file_data = {NULL, 0};
    WebPMux *mux = WebPMuxNew();
    int ok = mux && WebPMuxSetImage(mux, &image, 0) == WEBP_MUX_OK &&
             (!exif_len || WebPMuxSetChunk(mux, "EXIF", &meta, 0) == WEBP_MUX_OK) &&
             WebPMuxAssemble(mux, &file_data) == WEBP_MUX_OK;
    WebPMuxDelete(mux);
    WebPFree(bitstream);
    if (!ok) {
        WebPDataClear(&file_data);
        return hx_fail(err, "%s: assembling the WebP file failed", path);
    }
    FILE *f = fopen(path, "wb");
    int rc = 0;
    if (!f) rc = hx_fail(err, "%s: cannot create: %s", path, strerror(errno));
    else {
        size_t wrote = fwrite(file_data.bytes, 1, file_data.size, f);
        if (fclose(f) != 0 || wrote != file_data.size) {
            rc = hx_fail(err, "%s: write error: %s", path, strerror(errno));
            remove(path);
        }
    }
    WebPDataClear(&file_data);
    return rc;
}
