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

#include "../host/image_format.h"
#include "../host/npy.h"
#include "../host/png.h"
#include "test.h"

static char out[65536];
#define cli(...) test_cli_run(out, sizeof out, __VA_ARGS__)
#define tmp(name) test_tmp_path("surface_", name)

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
    if (e && e->size >= 8 && memcmp(e->data, "UNICODE\0", 8) == 0) { /* UTF-16BE back to UTF-8 */
        size_t k = 0;
        for (size_t i = 8; i + 1 < e->size && k + 5 < cap; i += 2) {
            uint32_t c = (uint32_t)e->data[i] << 8 | e->data[i + 1];
            if (c >= 0xD800 && c < 0xDC00 && i + 3 < e->size) { /* a surrogate pair */
                c = 0x10000 + ((c - 0xD800) << 10) + (((uint32_t)e->data[i + 2] << 8 | e->data[i + 3]) - 0xDC00);
                i += 2;
            }
            int extra = c < 0x80 ? 0 : c < 0x800 ? 1 : c < 0x10000 ? 2 : 3;
            text[k++] = (char)(extra == 0 ? c : (0xF0u << (3 - extra) & 0xFF) | c >> (6 * extra));
            for (int b = extra - 1; b >= 0; b--) text[k++] = (char)(0x80 | (c >> (6 * b) & 0x3F));
        }
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
    unsigned char *buf = test_read_file(path, &n);
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

/* One image written as PNG, JPEG and WebP, read back with libpng, libjpeg-turbo and libwebp (+ libexif). */
typedef struct {
    ftpng_image png;
    const char *params; /* the PNG's parameters text */
    decoded jpeg, webp;
    int ok;             /* all three read, JPEG and WebP of the PNG's size and channel count (WebP: RGB) */
    char shown[600];    /* the three parameter texts, for messages */
} image_trio;

/* Image k of the temporary files named by the three patterns (each with one %d). */
static void read_trio(image_trio *t, const char *png, const char *jpeg, const char *webp, int k) {
    char name[3][64];
    const char *patterns[3] = {png, jpeg, webp};
    for (int i = 0; i < 3; i++) snprintf(name[i], sizeof name[i], patterns[i], k);
    hx_err err;
    memset(t, 0, sizeof *t);
    int ok = ftpng_read(tmp(name[0]), &t->png, &err) == 0;
    ok &= read_jpeg(tmp(name[1]), &t->jpeg) && read_webp(tmp(name[2]), &t->webp);
    t->params = ok ? ftpng_find_text(&t->png, "parameters") : NULL;
    t->ok = ok && t->params && t->jpeg.w == t->png.w && t->jpeg.h == t->png.h && t->jpeg.channels == t->png.channels &&
            t->webp.w == t->png.w && t->webp.h == t->png.h;
    snprintf(t->shown, sizeof t->shown, "PNG '%.180s' JPEG '%.180s' WebP '%.180s'", t->params ? t->params : "",
             t->jpeg.params, t->webp.params);
}

/* Frees the trio, then judges it: read and of the right size, the caller's fidelity measure, the parameters. */
static test_result trio_verdict(image_trio *t, int k, int ok, int fidelity_ok, const char *fidelity, int params_ok) {
    char shown[sizeof t->shown];
    snprintf(shown, sizeof shown, "%s", t->shown);
    ftpng_free(&t->png);
    free(t->jpeg.pixels);
    free(t->webp.pixels);
    test_note("image %d: %s", k, fidelity);
    CHECK(ok, "image %d: a file is missing or of the wrong size", k);
    CHECK(fidelity_ok, "image %d: %s", k, fidelity);
    CHECK(params_ok, "image %d parameters: %s", k, shown);
    return PASS;
}

/* The writers in this process (so the sanitizer run covers them): a smooth RGB and a grey image in every format,
 * parameters with non-ASCII text (2-, 3- and 4-byte UTF-8: UTF-16 surrogates), and the refusals. */
TEST(image_formats_write_parameters_in_process) {
    enum { W = 20, H = 13 };
    uint8_t rgb[W * H * 3], gray[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgb + (y * W + x) * 3;
            p[0] = (uint8_t)(12 * x), p[1] = (uint8_t)(19 * y), p[2] = (uint8_t)(255 - 6 * (x + y));
            gray[y * W + x] = (uint8_t)(8 * x + 5 * y);
        }
    const char *params = "class 8 (Bag)\nSteps: 9, Model: caf\xc3\xa9_\xe2\x82\xac_\xf0\x9f\x91\x9c.safetensors";
    hx_err err;
    for (int channels = 1; channels <= 3; channels += 2) {
        const uint8_t *px = channels == 3 ? rgb : gray;
        char png[32], jpeg[32], webp[32];
        snprintf(png, sizeof png, "inproc_%d.png", channels);
        snprintf(jpeg, sizeof jpeg, "inproc_%d.jpeg", channels);
        snprintf(webp, sizeof webp, "inproc_%d.WebP", channels);
        CHECK(image_write(tmp(png), px, W, H, channels, params, &err) == 0, "%s", err.msg);
        CHECK(image_write(tmp(jpeg), px, W, H, channels, params, &err) == 0, "%s", err.msg);
        CHECK(image_write(tmp(webp), px, W, H, channels, params, &err) == 0, "%s", err.msg);
        decoded j, w;
        int ok = read_jpeg(tmp(jpeg), &j) && read_webp(tmp(webp), &w);
        double pj = ok && j.w == W && j.h == H && j.channels == channels ? psnr(j.pixels, px, W * H * channels) : 0;
        for (int i = 0; ok && channels == 1 && i < W * H; i++) w.pixels[i] = w.pixels[3 * i];
        double pw = ok && w.w == W && w.h == H ? psnr(w.pixels, px, W * H * channels) : 0;
        int same = ok && strcmp(j.params, params) == 0 && strcmp(w.params, params) == 0;
        char shown[300];
        snprintf(shown, sizeof shown, "JPEG '%.120s' WebP '%.120s'", j.params, w.params);
        free(j.pixels);
        free(w.pixels);
        test_note("%d channel(s): JPEG %.1f dB, WebP %.1f dB", channels, pj, pw);
        CHECK(pj > 35 && pw > 30, "%d channel(s): JPEG %.1f dB, WebP %.1f dB", channels, pj, pw);
        CHECK(same, "%d channel(s): parameters %s", channels, shown);
    }
    CHECK(image_write(tmp("x.gif"), rgb, W, H, 3, params, &err) != 0 && strstr(err.msg, "'.gif'"), "%s", err.msg);
    CHECK(image_write(tmp("none/x.webp"), rgb, W, H, 3, NULL, &err) != 0 && strstr(err.msg, "cannot create"), "%s",
          err.msg);
    CHECK(image_write(tmp("x.jpg"), rgb, W, H, 2, NULL, &err) != 0 && strstr(err.msg, "2 channels"), "%s", err.msg);
    return PASS;
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
        image_trio t;
        read_trio(&t, "names_%d.png", "names_%d.jpg", "names_%d.webp", k);
        int ok = t.ok && t.png.channels == 1 && t.png.w == 32;
        double pj = ok ? psnr(t.jpeg.pixels, t.png.pixels, 1024) : 0, pw = 0;
        for (int i = 0; ok && i < 1024; i++) t.webp.pixels[i] = t.webp.pixels[3 * i]; /* WebP stores gray as RGB */
        if (ok) pw = psnr(t.webp.pixels, t.png.pixels, 1024);
        int params_ok = ok && strncmp(t.params, first[k], strlen(first[k])) == 0 &&
                        strstr(t.params, "Sampler: heun:1,") && strstr(t.params, "Model: embedded:fashion_sit") &&
                        strcmp(t.jpeg.params, t.params) == 0 && strcmp(t.webp.params, t.params) == 0;
        char fidelity[96];
        snprintf(fidelity, sizeof fidelity, "JPEG %.1f dB, WebP %.1f dB against the PNG", pj, pw);
        if (trio_verdict(&t, k, ok, pj > 30 && pw > 30, fidelity, params_ok) != PASS) return FAIL;
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
        image_trio t;
        read_trio(&t, "ref_%d.png", "new/dirs/img_%d.JPG", "img_%d.webp", k);
        int ok = t.ok && t.png.channels == 3 && t.png.w == 12;
        /* sit_b's random weights make noise: JPEG (4:4:4) keeps it, lossy WebP only keeps each channel's mean */
        double pj = ok ? psnr(t.jpeg.pixels, t.png.pixels, 144 * 3) : 0, worst = ok ? 0 : 1e9;
        for (int c = 0; ok && c < 3; c++) {
            double d = fabs(channel_mean(t.webp.pixels, 144, 3, c) - channel_mean(t.png.pixels, 144, 3, c));
            if (d > worst) worst = d;
        }
        int params_ok = ok && strcmp(t.jpeg.params, t.params) == 0 &&
                        strncmp(t.webp.params, "decoded latents", 15) == 0 && strstr(t.webp.params, "Model: sit_b");
        char fidelity[96];
        snprintf(fidelity, sizeof fidelity, "JPEG %.1f dB against the PNG, WebP channel means within %.1f", pj, worst);
        if (trio_verdict(&t, k, ok, pj > 28 && worst < 12, fidelity, params_ok) != PASS) return FAIL;
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
    unsigned char *a = test_read_file(tmp("r1.npy"), &n1), *b = test_read_file(tmp("r2.npy"), &n2);
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
