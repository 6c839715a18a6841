/* host/png.c — PNG writing and reading with libpng (see png.h). */
#include "png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PNG_READ_MAX_SIDE 16384      /* pixels per side */
#define PNG_READ_MAX_CHUNK (8u << 20) /* bytes of one ancillary chunk (text) */

typedef struct {
    hx_err *err;
    const char *path;
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    hx_fail(c->err, "%s: PNG error: %s", c->path, msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* Growing memory destination of ftpng_encode. */
typedef struct {
    uint8_t *data;
    size_t size, cap;
} mem_sink;

static void mem_write(png_structp png, png_bytep data, png_size_t n) {
    mem_sink *m = png_get_io_ptr(png);
    if (m->size + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->size + n) cap *= 2;
        uint8_t *grown = realloc(m->data, cap);
        if (!grown) png_error(png, "out of memory");
        m->data = grown;
        m->cap = cap;
    }
    memcpy(m->data + m->size, data, n);
    m->size += n;
}

static void mem_flush(png_structp png) { (void)png; }

static int check_image(const char *name, int w, int h, int channels, const ftpng_text *texts, int n_texts,
                       hx_err *err) {
    if (w < 1 || h < 1 || (channels != 1 && channels != 3))
        return hx_fail(err, "%s: cannot write a %dx%d image with %d channels", name, w, h, channels);
    for (int i = 0; i < n_texts; i++) {
        size_t kl = strlen(texts[i].key);
        if (kl < 1 || kl > 79) return hx_fail(err, "%s: PNG text keyword '%s' must be 1-79 characters", name, texts[i].key);
    }
    return 0;
}

/* Writes the PNG into f, or into sink when f is NULL. */
static int encode(const char *name, FILE *f, mem_sink *sink, const uint8_t *pixels, int w, int h, int channels,
                  const ftpng_text *texts, int n_texts, hx_err *err) {
    png_ctx c = {err, name};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_textp tx = n_texts > 0 ? calloc((size_t)n_texts, sizeof *tx) : NULL;
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    volatile int ok = 0;
    if (!png || !info || !rows || (n_texts > 0 && !tx)) {
        hx_fail(err, "%s: out of memory", name);
    } else if (setjmp(png_jmpbuf(png)) == 0) {
        if (f) png_init_io(png, f);
        else png_set_write_fn(png, sink, mem_write, mem_flush);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                     channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        for (int i = 0; i < n_texts; i++) {
            tx[i].compression = PNG_TEXT_COMPRESSION_NONE;
            tx[i].key = (png_charp)texts[i].key;
            tx[i].text = (png_charp)texts[i].text;
            tx[i].text_length = strlen(texts[i].text);
        }
        if (n_texts > 0) png_set_text(png, info, tx, n_texts);
        for (int y = 0; y < h; y++) rows[y] = (png_bytep)(pixels + (size_t)y * w * channels);
        png_set_rows(png, info, rows);
        png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
        ok = 1;
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    free(tx);
    free(rows);
    return ok ? 0 : -1;
}

int ftpng_write(const char *path, const uint8_t *pixels, int w, int h, int channels, const ftpng_text *texts,
                int n_texts, hx_err *err) {
    if (check_image(path, w, h, channels, texts, n_texts, err) != 0) return -1;
    FILE *f = fopen(path, "wb");
    if (!f) return hx_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int ok = encode(path, f, NULL, pixels, w, h, channels, texts, n_texts, err) == 0;
    if (fclose(f) != 0 && ok) {
        hx_fail(err, "%s: write error: %s", path, strerror(errno));
        ok = 0;
    }
    if (!ok) remove(path);
    return ok ? 0 : -1;
}

int ftpng_encode(const uint8_t *pixels, int w, int h, int channels, const ftpng_text *texts, int n_texts,
                 uint8_t **out, size_t *size, hx_err *err) {
    *out = NULL;
    *size = 0;
    if (check_image("PNG", w, h, channels, texts, n_texts, err) != 0) return -1;
    mem_sink sink = {NULL, 0, 0};
    if (encode("PNG", NULL, &sink, pixels, w, h, channels, texts, n_texts, err) != 0) {
        free(sink.data);
        return -1;
    }
    *out = sink.data;
    *size = sink.size;
    return 0;
}

void ftpng_free(ftpng_image *img) {
    free(img->pixels);
    for (int i = 0; i < img->n_texts; i++) {
        free(img->keys[i]);
        free(img->texts[i]);
    }
    free(img->keys);
    free(img->texts);
    memset(img, 0, sizeof *img);
}

int ftpng_read(const char *path, ftpng_image *img, hx_err *err) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return hx_fail(err, "%s: cannot open: %s", path, strerror(errno));
    png_ctx c = {err, path};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int ok = 0;
    if (!png || !info) {
        hx_fail(err, "%s: out of memory", path);
    } else if (setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, f);
        /* untrusted sizes: libpng would allocate what a header or a chunk length claims */
        png_set_user_limits(png, PNG_READ_MAX_SIDE, PNG_READ_MAX_SIDE);
        png_set_chunk_malloc_max(png, PNG_READ_MAX_CHUNK);
        png_set_chunk_cache_max(png, 1000);
        png_set_benign_errors(png, 0); /* else "chunk data is too large" is only a warning */
        png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
        int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
        int ct = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
        if (depth != 8 || (ct != PNG_COLOR_TYPE_RGB && ct != PNG_COLOR_TYPE_GRAY)) {
            hx_fail(err, "%s: only 8-bit RGB or gray PNGs are read (color type %d, depth %d)", path, ct, depth);
        } else {
            img->w = w;
            img->h = h;
            img->channels = ct == PNG_COLOR_TYPE_RGB ? 3 : 1;
            size_t row = (size_t)w * img->channels;
            img->pixels = malloc(row * (size_t)h);
            png_bytepp rows = png_get_rows(png, info);
            png_textp tx = NULL;
            int nt = 0;
            png_get_text(png, info, &tx, &nt);
            img->keys = calloc((size_t)nt + 1, sizeof(char *));
            img->texts = calloc((size_t)nt + 1, sizeof(char *));
            if (!img->pixels || !img->keys || !img->texts) {
                hx_fail(err, "%s: out of memory", path);
            } else {
                for (int y = 0; y < h; y++) memcpy(img->pixels + (size_t)y * row, rows[y], row);
                ok = 1;
                for (int i = 0; i < nt && ok; i++) {
                    img->keys[i] = strdup(tx[i].key);
                    img->texts[i] = strdup(tx[i].text ? tx[i].text : "");
                    img->n_texts = i + 1;
                    if (!img->keys[i] || !img->texts[i]) ok = 0;
                }
                if (!ok) hx_fail(err, "%s: out of memory", path);
            }
        }
    }
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    fclose(f);
    if (!ok) ftpng_free(img);
    return ok ? 0 : -1;
}

const char *ftpng_find_text(const ftpng_image *img, const char *key) {
    for (int i = 0; i < img->n_texts; i++)
        if (strcmp(img->keys[i], key) == 0) return img->texts[i];
    return NULL;
}
