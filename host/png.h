/*
 * host/png.h — 8-bit PNG files through libpng: RGB or grayscale, with
 * tEXt chunks (A1111 puts the generation settings in a "parameters" chunk).
 * Functions are prefixed ftpng_ so they never collide with libpng's png_*.
 */
#ifndef HOST_PNG_H
#define HOST_PNG_H

#include <stdint.h>

#include "errmsg.h"

typedef struct {
    const char *key;  /* 1-79 Latin-1 characters */
    const char *text;
} ftpng_text;

/* pixels: h rows of w * channels bytes (channels 3 = RGB, 1 = gray). */
int ftpng_write(const char *path, const uint8_t *pixels, int w, int h, int channels, const ftpng_text *texts,
                int n_texts, hx_err *err);

/* The same PNG into memory: *out (malloc'd, *size bytes). */
int ftpng_encode(const uint8_t *pixels, int w, int h, int channels, const ftpng_text *texts, int n_texts,
                 uint8_t **out, size_t *size, hx_err *err);

typedef struct {
    int w, h, channels;  /* channels: 1 (gray) or 3 (RGB), as stored */
    uint8_t *pixels;     /* malloc'd h * w * channels */
    int n_texts;
    char **keys, **texts; /* malloc'd */
} ftpng_image;

/* Reads an 8-bit gray or RGB PNG (other formats are refused) with its text chunks; sides above 16384 pixels
 * and text chunks above 8 MiB are refused before anything is allocated for them. */
int ftpng_read(const char *path, ftpng_image *img, hx_err *err);
void ftpng_free(ftpng_image *img);
/* The text of chunk key, or NULL. */
const char *ftpng_find_text(const ftpng_image *img, const char *key);

#endif
