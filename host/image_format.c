/* host/image_format.c — see image_format.h. */
#include "image_format.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exif_comment.h"
#include "jpeg.h"
#include "png.h"
#include "webp.h"

#define WRITABLE "use .png, .jpg/.jpeg or .webp"

int image_format_of(const char *path, image_format *fmt, hx_err *err) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return hx_fail(err, "'%s' has no file extension to name the image format: " WRITABLE, path);
    static const struct {
        const char *ext;
        image_format fmt;
    } known[] = {{".png", IMAGE_PNG}, {".jpg", IMAGE_JPEG}, {".jpeg", IMAGE_JPEG}, {".webp", IMAGE_WEBP}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(dot, known[i].ext) == 0) {
            *fmt = known[i].fmt;
            return 0;
        }
    return hx_fail(err, "cannot write '%s' images ('%s'): " WRITABLE, dot, path);
}

int image_write(const char *path, const uint8_t *pixels, int w, int h, int channels, const char *params, hx_err *err) {
    image_format fmt;
    if (image_format_of(path, &fmt, err) != 0) return -1;
    if (fmt == IMAGE_PNG) {
        ftpng_text text = {"parameters", params};
        return ftpng_write(path, pixels, w, h, channels, &text, params ? 1 : 0, err);
    }
    uint8_t *exif = NULL;
    size_t exif_len = 0;
    if (params && exif_user_comment(params, fmt == IMAGE_JPEG, &exif, &exif_len, err) != 0) return -1;
    int rc = fmt == IMAGE_JPEG ? ftjpeg_write(path, pixels, w, h, channels, IMAGE_QUALITY, exif, exif_len, err)
                               : ftwebp_write(path, pixels, w, h, channels, IMAGE_QUALITY, exif, exif_len, err);
    free(exif);
    return rc;
}
