/* host/exif_comment.c — see exif_comment.h. */
#include "exif_comment.h"

#include <libexif/exif-data.h>
#include <stdlib.h>
#include <string.h>

#define EXIF_HEADER_LEN 6 /* "Exif\0\0" */

/* Next code point of a UTF-8 string (U+FFFD for a malformed sequence); advances *s. */
static uint32_t next_code_point(const unsigned char **s) {
    const unsigned char *p = *s;
    uint32_t c = *p++;
    int extra = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : c >= 0x80 ? -1 : 0;
    if (extra < 0) {
        *s = p;
        return 0xFFFD;
    }
    if (extra) c &= 0x3Fu >> extra;
    for (int i = 0; i < extra; i++, p++) {
        if ((*p & 0xC0) != 0x80) {
            *s = p;
            return 0xFFFD;
        }
        c = c << 6 | (*p & 0x3Fu);
    }
    *s = p;
    return c > 0x10FFFF || (c >= 0xD800 && c < 0xE000) ? 0xFFFD : c;
}

/* "UNICODE\0" + the text in UTF-16BE (surrogate pairs above U+FFFF); returns the byte count. */
static size_t encode_comment(const char *text, unsigned char *out) {
    static const char prefix[8] = {'U', 'N', 'I', 'C', 'O', 'D', 'E', 0};
    memcpy(out, prefix, 8);
    size_t n = 8;
    for (const unsigned char *s = (const unsigned char *)text; *s;) {
        uint32_t c = next_code_point(&s);
        uint16_t units[2] = {(uint16_t)c, 0};
        int k = 1;
        if (c > 0xFFFF) {
            c -= 0x10000;
            units[0] = (uint16_t)(0xD800 | c >> 10), units[1] = (uint16_t)(0xDC00 | (c & 0x3FF)), k = 2;
        }
        for (int i = 0; i < k; i++) out[n++] = (unsigned char)(units[i] >> 8), out[n++] = (unsigned char)units[i];
    }
    return n;
}

int exif_user_comment(const char *text, int jpeg_header, uint8_t **out, size_t *len, hx_err *err) {
    *out = NULL;
    *len = 0;
    size_t cap = 8 + 4 * strlen(text); /* at most two UTF-16 units (4 bytes) per input byte */
    if (cap > 60000) return hx_fail(err, "metadata text too long for EXIF (%zu bytes)", strlen(text));
    ExifMem *mem = exif_mem_new_default();
    ExifData *ed = mem ? exif_data_new_mem(mem) : NULL;
    ExifEntry *e = mem ? exif_entry_new_mem(mem) : NULL;
    unsigned char *comment = e ? exif_mem_alloc(mem, (ExifLong)cap) : NULL;
    unsigned char *saved = NULL;
    unsigned int saved_len = 0;
    if (ed && e && comment) {
        exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_MOTOROLA);
        e->tag = EXIF_TAG_USER_COMMENT;
        e->format = EXIF_FORMAT_UNDEFINED;
        e->data = comment;
        e->size = (unsigned int)encode_comment(text, comment);
        e->components = e->size;
        exif_content_add_entry(ed->ifd[EXIF_IFD_EXIF], e);
        exif_data_save_data(ed, &saved, &saved_len); /* "Exif\0\0" + TIFF */
    } else if (comment) {
        exif_mem_free(mem, comment);
    }
    if (e) exif_entry_unref(e);
    if (ed) exif_data_unref(ed);
    if (mem) exif_mem_unref(mem);
    if (!saved || saved_len <= EXIF_HEADER_LEN) {
        free(saved);
        return hx_fail(err, "out of memory building the EXIF metadata");
    }
    if (!jpeg_header) {
        memmove(saved, saved + EXIF_HEADER_LEN, saved_len - EXIF_HEADER_LEN);
        saved_len -= EXIF_HEADER_LEN;
    }
    *out = saved;
    *len = saved_len;
    return 0;
}
