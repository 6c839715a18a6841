/* tests/test_cli_surface.c — what a new user of build/flowturbo meets: class names in --class, the output format
 * from the extension (PNG / JPEG / WebP read back with libjpeg-turbo, libwebp and libexif, the parameters in the
 * Exif UserComment), near-miss samplers answered with the valid forms and a "did you mean", warnings for flags
 * that change nothing, a random seed that is printed and reproduces, info --names, the decode progress rate, and
 * output into directories that do not exist yet. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <webp/decode.h>
#include <webp/mux.h>

#include "../host/npy.h"
#include "../host/png.h"
#include "test.h"

static char out[65536];
#define cli(...) test_cli_run(out, sizeof out, __VA_ARGS__)
#define tmp(name) test_tmp_path("surface_", name)

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = size > 0 ? malloc((size_t)size) : NULL;
    *n = buf ? fread(buf, 1, (size_t)size, f) : 0;
    fclose(f);
    return buf;
}

/* The Exif UserComment of an EXIF block as ASCII ("" when absent). A JPEG APP1 block starts with "Exif\0\0", a
 * WebP EXIF chunk is the bare TIFF structure (which libexif only finds behind that header). */
static void exif_comment(const unsigned char *data, size_t n, char *text, size_t cap) {
    text[0] = 0;
    unsigned char *block = malloc(n + 6);
    if (!block) return;
    size_t len = n;
    if (n >= 6 && memcmp(data, "Exif\0\0", 6) == 0) memcpy(block, data, n);
    else memcpy(block, "Exif\0\0", 6), memcpy(block + 6, data, n), len += 6;
    ExifData *ed = exif_data_new_from_data(block, (unsigned int)len);
    free(block);
    ExifEntry *e = ed ? exif_content_get_entry(ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_USER_COMMENT) : NULL;
    if (e && e->size >= 8 && memcmp(e->data, "UNICODE\0", 8) == 0) {
        size_t k = 0;
        for (size_t i = 8; i + 1 < e->size && k + 1 < cap; i += 2) /* UTF-16BE; the tests' text is ASCII */
            text[k++] = e->data[i] == 0 ? (char)e->data[i + 1] : '?';
        text[k] = 0;
    }
    if (ed) exif_data_unref(ed);
}

typedef struct {
    int w, h, channels;
    unsigned char *pixels; /* malloc'd */
    char params[4096];
} decoded;

static int read_jpeg(const char *path, decoded *d) {
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr); /* the files are ours: a libjpeg error exits the test runner, loudly */
    jpeg_create_decompress(&c);
    jpeg_stdio_src(&c, f);
    jpeg_save_markers(&c, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&c, TRUE);
    for (jpeg_saved_marker_ptr m = c.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1) exif_comment(m->data, m->data_length, d->params, sizeof d->params);
    jpeg_start_decompress(&c);
    d->w = (int)c.output_width, d->h = (int)c.output_height, d->channels = c.output_components;
    d->pixels = malloc((size_t)d->w * d->h * d->channels);
    while (c.output_scanline < c.output_height) {
        JSAMPROW row = d->pixels + (size_t)c.output_scanline * d->w * d->channels;
        jpeg_read_scanlines(&c, &row, 1);
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
    fclose(f);
    return 1;
}

static int read_webp(const char *path, decoded *d) {
    memset(d, 0, sizeof *d);
    size_t n;
    unsigned char *buf = read_all(path, &n);
    if (!buf) return 0;
    uint8_t *rgb = WebPDecodeRGB(buf, n, &d->w, &d->h);
    if (rgb) {
        d->channels = 3;
        d->pixels = malloc((size_t)d->w * d->h * 3);
        memcpy(d->pixels, rgb, (size_t)d->w * d->h * 3);
        WebPFree(rgb);
    }
    WebPData data = {buf, n}, chunk;
    WebPMux *mux = WebPMuxCreate(&data, 0);
    if (mux && WebPMuxGetChunk(mux, "EXIF", &chunk) == WEBP_MUX_OK)
        exif_comment(chunk.bytes, chunk.size, d->params, sizeof d->params);
    WebPMuxDelete(mux);
    free(buf);
    return rgb != NULL;
}

static double psnr(const unsigned char *a, const unsigned char *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return se == 0 ? INFINITY : 10 * log10(255.0 * 255.0 * (double)n / se);
}

/* Per-channel mean of interleaved pixels. */
static double channel_mean(const unsigned char *px, size_t n_pixels, int channels, int c) {
    double sum = 0;
    for (size_t i = 0; i < n_pixels; i++) sum += px[i * channels + c];
    return sum / (double)n_pixels;
}

/* The embedded model names its classes; garments (not noise) let JPEG and WebP show their real fidelity. */
TEST(cli_class_names_and_image_formats) {
    static const char *exts[] = {"png", "jpg", "webp"};
    for (int e = 0; e < 3; e++) {
        char pattern[32];
        snprintf(pattern, sizeof pattern, "names_%%d.%s", exts[e]);
        CHECK(cli("generate --backend cpu -t 1 --sampler heun:1 --cfg-scale 1 --class 'trouser, BAG,3' -n 3 -o %s",
                  tmp(pattern)) == 0, "%s", out);
    }
    static const char *first[] = {"class 1 (Trouser)\n", "class 8 (Bag)\n", "class 3 (Dress)\n"};
    for (int k = 0; k < 3; k++) {
        char name[32];
        ftpng_image png;
        hx_err err;
        snprintf(name, sizeof name, "names_%d.png", k);
        CHECK(ftpng_read(tmp(name), &png, &err) == 0 && png.channels == 1 && png.w == 32, "%s: %s", name, err.msg);
        const char *want = ftpng_find_text(&png, "parameters");
        decoded j, w;
        snprintf(name, sizeof name, "names_%d.jpg", k);
        int jok = read_jpeg(tmp(name), &j) && j.w == 32 && j.h == 32 && j.channels == 1;
        snprintf(name, sizeof name, "names_%d.webp", k);
        int wok = read_webp(tmp(name), &w) && w.w == 32 && w.h == 32;
        double pj = jok ? psnr(j.pixels, png.pixels, 1024) : 0, pw = 0;
        for (int i = 0; wok && i < 1024; i++) w.pixels[i] = w.pixels[3 * i]; /* WebP stores gray as RGB */
        if (wok) pw = psnr(w.pixels, png.pixels, 1024);
        int params_ok = want && strncmp(want, first[k], strlen(first[k])) == 0 &&
                        strstr(want, "Sampler: heun:1,") && strstr(want, "Model: embedded:fashion_sit");
        int same_params = want && jok && wok && strcmp(j.params, want) == 0 && strcmp(w.params, want) == 0;
        char shown[600];
        snprintf(shown, sizeof shown, "PNG '%.180s' JPEG '%.180s' WebP '%.180s'", want ? want : "", j.params, w.params);
        ftpng_free(&png);
        free(j.pixels);
        free(w.pixels);
        test_note("image %d: JPEG %.1f dB, WebP %.1f dB against the PNG", k, pj, pw);
        CHECK(jok && wok, "image %d: JPEG/WebP missing or wrong size", k);
        CHECK(pj > 30 && pw > 30, "image %d: JPEG %.1f dB, WebP %.1f dB against the PNG", k, pj, pw);
        CHECK(params_ok && same_params, "image %d parameters: %s", k, shown);
    }
    CHECK(cli("generate --sampler heun:1 --class Trouser,Jacket") == 2, "unknown name: %s", out);
    CHECK(strstr(out, "'Jacket' is not a class of embedded:fashion_sit") && strstr(out, "9 Ankle boot") &&
              strstr(out, "--class"), "message does not list the classes: %s", out);
    CHECK(cli("generate -m %s --sampler H2P1 --class dog", test_data("sit_b.safetensors")) == 2 &&
              strstr(out, "names no classes") && strstr(out, "0..2"), "model without names: %s", out);
    return PASS;
}

/* RGB through JPEG (generate, into directories that do not exist yet) and WebP (decode). */
TEST(cli_output_format_from_extension) {
    const char *m = test_data("sit_b.safetensors");
    const char *common = "--backend cpu --sampler H2P1 --class 0,2 -n 2 -s 3";
    CHECK(cli("generate -m %s %s -o %s --latents-out %s", m, common, tmp("ref_%d.png"), tmp("z.npy")) == 0, "%s", out);
    CHECK(cli("generate -m %s %s -o %s", m, common, tmp("new/dirs/img_%d.JPG")) == 0, "%s", out);
    CHECK(cli("decode -m %s --backend cpu --latents %s -o %s", m, tmp("z.npy"), tmp("img_%d.webp")) == 0, "%s", out);
    CHECK(strstr(out, "decoding |") && strstr(out, "img/s") && !strstr(out, "-img/s"), "decode rate: %s", out);
    for (int k = 0; k < 2; k++) {
        char name[64];
        ftpng_image png;
        hx_err err;
        snprintf(name, sizeof name, "ref_%d.png", k);
        CHECK(ftpng_read(tmp(name), &png, &err) == 0, "%s", err.msg);
        const char *want = ftpng_find_text(&png, "parameters");
        decoded j, w;
        snprintf(name, sizeof name, "new/dirs/img_%d.JPG", k);
        int jok = read_jpeg(tmp(name), &j) && j.w == 12 && j.h == 12 && j.channels == 3;
        snprintf(name, sizeof name, "img_%d.webp", k);
        int wok = read_webp(tmp(name), &w) && w.w == 12 && w.h == 12;
        /* sit_b's random weights make noise: JPEG (4:4:4) keeps it, lossy WebP only keeps each channel's mean */
        double pj = jok ? psnr(j.pixels, png.pixels, 144 * 3) : 0, worst = wok ? 0 : 1e9;
        for (int c = 0; wok && c < 3; c++) {
            double d = fabs(channel_mean(w.pixels, 144, 3, c) - channel_mean(png.pixels, 144, 3, c));
            if (d > worst) worst = d;
        }
        int jparams = jok && want && strcmp(j.params, want) == 0;
        int wparams = wok && strncmp(w.params, "decoded latents", 15) == 0 && strstr(w.params, "Model: sit_b");
        char shown[600];
        snprintf(shown, sizeof shown, "PNG '%.180s' JPEG '%.180s' WebP '%.180s'", want ? want : "", j.params, w.params);
        ftpng_free(&png);
        free(j.pixels);
        free(w.pixels);
        test_note("image %d: JPEG %.1f dB against the PNG, WebP channel means within %.1f", k, pj, worst);
        CHECK(jok && wok, "image %d: JPEG/WebP missing or wrong size", k);
        CHECK(pj > 28 && worst < 12, "image %d: JPEG %.1f dB, WebP channel means off by %.1f", k, pj, worst);
        CHECK(jparams && wparams, "image %d parameters: %s", k, shown);
    }
    /* an extension it cannot write, or none: a usage error before any work, not PNG bytes under that name */
    CHECK(cli("generate -m %s --sampler H2P1 -o %s", m, tmp("x.bmp")) == 2 && strstr(out, "'.bmp'") &&
              strstr(out, ".jpg") && strstr(out, ".webp") && !test_file_exists(tmp("x.bmp")), "bmp: %s", out);
    CHECK(cli("decode -m %s --latents %s -o %s", m, tmp("z.npy"), tmp("noext")) == 2 &&
              strstr(out, "no file extension"), "no extension: %s", out);
    return PASS;
}

TEST(cli_near_miss_sampler_did_you_mean) {
    static const struct {
        const char *given, *suggested;
    } cases[] = {{"heun", "heun:8"}, {"Euler-20", "euler:20"}, {"R3H1P5", "H1P5R3"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cli("generate --sampler %s", cases[i].given) == 2, "--sampler %s: %s", cases[i].given, out);
        char want[64];
        snprintf(want, sizeof want, "did you mean '%s'?", cases[i].suggested);
        CHECK(strstr(out, "--sampler") && strstr(out, want) && strstr(out, "H<a>P<b>R<c>") && strstr(out, "heun:N") &&
                  strstr(out, "euler:N"), "--sampler %s: %s", cases[i].given, out);
    }
    return PASS;
}

TEST(cli_warns_about_flags_that_change_nothing) {
    CHECK(cli("generate -m %s --refiner %s --vae %s --sampler H2P1 --grid-cols 2 --backend cpu --dtype f16 "
              "--latents-out %s", test_data("sit_b.safetensors"), test_data("sit_a_refiner.safetensors"),
              test_data("vae_tiny.safetensors"), tmp("warn.npy")) == 0, "%s", out);
    CHECK(strstr(out, "[WARN ] --refiner") && strstr(out, "no refiner (R) blocks"), "refiner: %s", out);
    CHECK(strstr(out, "[WARN ] --vae") && strstr(out, "only latents"), "vae: %s", out);
    CHECK(strstr(out, "[WARN ] --grid-cols changes nothing"), "grid-cols: %s", out);
    CHECK(strstr(out, "[WARN ] --dtype: changes nothing on the cpu backend"), "dtype: %s", out);
    CHECK(!strstr(out, "loading --refiner") && !strstr(out, "loading --vae"), "unused models were loaded: %s", out);
    return PASS;
}

TEST(cli_random_seed_is_printed_and_reproduces) {
    const char *m = test_data("sit_b.safetensors");
    CHECK(cli("generate -m %s --backend cpu --sampler H2P1 -s -1 --latents-out %s", m, tmp("r1.npy")) == 0, "%s", out);
    const char *at = strstr(out, "random seed ");
    unsigned long long seed;
    CHECK(at && sscanf(at, "random seed %llu", &seed) == 1, "no seed printed: %s", out);
    CHECK(cli("generate -m %s --backend cpu --sampler H2P1 -s %llu --latents-out %s", m, seed, tmp("r2.npy")) == 0,
          "%s", out);
    size_t n1, n2;
    unsigned char *a = read_all(tmp("r1.npy"), &n1), *b = read_all(tmp("r2.npy"), &n2);
    int same = a && b && n1 == n2 && memcmp(a, b, n1) == 0;
    free(a);
    free(b);
    CHECK(same, "-s %llu does not reproduce the -s -1 run", seed);
    return PASS;
}

TEST(cli_info_names_prints_only_names) {
    CHECK(cli("info --names %s", test_data("sit_b.safetensors")) == 0, "%s", out);
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++)
        CHECK(strchr(line, ' ') == NULL && strchr(line, ':') == NULL, "not a tensor name: '%s'", line);
    CHECK(lines == 42, "%d lines (sit_b has 42 tensors)", lines);
    return PASS;
}
