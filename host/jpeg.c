/* host/jpeg.c — JPEG writing with libjpeg-turbo (see jpeg.h). */
#include "jpeg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <string.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands this pointer back to on_error */
    jmp_buf jump;
    hx_err *err;
    const char *path;
} jpeg_failure;

static void on_error(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    hx_fail(f->err, "%s: JPEG error: %s", f->path, msg);
    longjmp(f->jump, 1);
}

int ftjpeg_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int quality,
                 const uint8_t *app1, size_t app1_len, hx_err *err) {
    if (w < 1 || h < 1 || (channels != 1 && channels != 3))
        return hx_fail(err, "%s: cannot write a %dx%d image with %d channels", path, w, h, channels);
    if (app1_len > 65533) return hx_fail(err, "%s: metadata block too large for JPEG (%zu bytes)", path, app1_len);
    FILE *file = fopen(path, "wb");
    if (!file) return hx_fail(err, "%s: cannot create: %s", path, strerror(errno));
    struct jpeg_compress_struct cinfo;
    jpeg_failure fail;
    cinfo.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = on_error;
    fail.err = err;
    fail.path = path;
    volatile int ok = 0;
    if (setjmp(fail.jump) == 0) {
        jpeg_create_compress(&cinfo);
        jpeg_stdio_dest(&cinfo, file);
        cinfo.image_width = (JDIMENSION)w;
        cinfo.image_height = (JDIMENSION)h;
        cinfo.input_components = channels;
        cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
        jpeg_set_defaults(&cinfo);
        jpeg_set_quality(&cinfo, quality, TRUE);
        cinfo.comp_info[0].h_samp_factor = cinfo.comp_info[0].v_samp_factor = 1; /* 4:4:4: small images keep colour */
        jpeg_start_compress(&cinfo, TRUE);
        if (app1 && app1_len) jpeg_write_marker(&cinfo, JPEG_APP0 + 1, app1, (unsigned int)app1_len);
        while (cinfo.next_scanline < cinfo.image_height) {
            JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * w * channels);
            jpeg_write_scanlines(&cinfo, &row, 1);
        }
        jpeg_finish_compress(&cinfo);
        ok = 1;
    }
    jpeg_destroy_compress(&cinfo);
    if (fclose(file) != 0 && ok) {
        hx_fail(err, "%s: write error: %s", path, strerror(errno));
        ok = 0;
    }
    if (!ok) remove(path);
    return ok ? 0 : -1;
}
