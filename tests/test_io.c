/* tests/test_io.c — the host I/O modules: .npy, PNG (+ tEXt), the streaming
 * .npz writer and reader (checked by the C reader and, when present, by
 * NumPy), output names, class lists, grids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../host/image_grid.h"
#include "../host/labels.h"
#include "../host/npy.h"
#include "../host/npz.h"
#include "../host/output_names.h"
#include "../host/png.h"
#include "test.h"

static const char *tmp_path(const char *name) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/io_%s", test_tmpdir(), name);
    return p;
}

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static int have_numpy(void) { return test_run("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

TEST(npy_round_trip) {
    hx_err err;
    float f[2 * 3 * 4];
    for (int i = 0; i < 24; i++) f[i] = (float)i * 0.5f - 3.25f;
    int64_t fs[3] = {2, 3, 4};
    CHECK(npy_save(tmp_path("f.npy"), NPY_F32, 3, fs, f, &err) == 0, "%s", err.msg);
    npy_array a;
    CHECK(npy_load(tmp_path("f.npy"), &a, &err) == 0, "%s", err.msg);
    CHECK(a.h.dtype == NPY_F32 && a.h.ndim == 3 && a.h.shape[0] == 2 && a.h.shape[2] == 4 && a.h.numel == 24,
          "header mismatch");
    CHECK(a.h.header_bytes % 64 == 0, "data not 64-aligned: %zu", a.h.header_bytes);
    CHECK(memcmp(a.data, f, sizeof f) == 0, "float data differs");
    npy_free(&a);

    int64_t l[5] = {0, -1, 1LL << 40, 7, INT64_MIN};
    int64_t ls[1] = {5};
    CHECK(npy_save(tmp_path("l.npy"), NPY_I64, 1, ls, l, &err) == 0, "%s", err.msg);
    CHECK(npy_load(tmp_path("l.npy"), &a, &err) == 0, "%s", err.msg);
    CHECK(a.h.dtype == NPY_I64 && a.h.ndim == 1 && a.h.shape[0] == 5, "int64 header mismatch");
    CHECK(memcmp(a.data, l, sizeof l) == 0, "int64 data differs");
    npy_free(&a);

    /* empty and scalar arrays */
    int64_t es[2] = {0, 3};
    CHECK(npy_save(tmp_path("e.npy"), NPY_U8, 2, es, NULL, &err) == 0, "%s", err.msg);
    CHECK(npy_load(tmp_path("e.npy"), &a, &err) == 0 && a.h.numel == 0 && a.h.ndim == 2, "empty: %s", err.msg);
    npy_free(&a);
    float one = 2.5f;
    CHECK(npy_save(tmp_path("s.npy"), NPY_F32, 0, NULL, &one, &err) == 0, "%s", err.msg);
    CHECK(npy_load(tmp_path("s.npy"), &a, &err) == 0 && a.h.ndim == 0 && a.h.numel == 1 && *(float *)a.data == 2.5f,
          "scalar: %s", err.msg);
    npy_free(&a);
    return PASS;
}

/* A .npy header built by hand: version byte, dict text. */
static size_t make_npy(uint8_t *buf, int major, const char *dict) {
    size_t dl = strlen(dict), pre = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    buf[8] = (uint8_t)(dl & 0xff);
    buf[9] = (uint8_t)(dl >> 8);
    if (major != 1) buf[10] = buf[11] = 0;
    memcpy(buf + pre, dict, dl);
    return pre + dl;
}

TEST(npy_header_versions_and_spellings) {
    uint8_t buf[512];
    npy_header h;
    hx_err err;
    size_t n = make_npy(buf, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }   \n");
    CHECK(npy_parse_header(buf, n, &h, "v2", &err) == 0, "%s", err.msg);
    CHECK(h.ndim == 2 && h.shape[1] == 3 && h.header_bytes == n, "v2 parse");
    n = make_npy(buf, 1, "{\"shape\": (7,), \"fortran_order\": False, \"descr\": \"|u1\"}\n");
    CHECK(npy_parse_header(buf, n, &h, "reordered", &err) == 0, "%s", err.msg);
    CHECK(h.dtype == NPY_U8 && h.ndim == 1 && h.shape[0] == 7, "reordered parse");
    n = make_npy(buf, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3L, 2L)}\n");
    CHECK(npy_parse_header(buf, n, &h, "py2", &err) == 0 && h.dtype == NPY_I64, "py2 longs: %s", err.msg);
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}\n");
    CHECK(npy_parse_header(buf, n, &h, "scalar", &err) == 0 && h.ndim == 0 && h.numel == 1, "scalar: %s", err.msg);
    return PASS;
}

TEST(npy_rejects_malformed_headers) {
    static const struct {
        int major;
        const char *dict, *expect;
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", "Fortran"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", "big-endian"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", "not supported"},
        {1, "{'descr': '<f4', 'fortran_order': False, }\n", "lacks 'shape'"},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", "twice"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", "unexpected key"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", "negative"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "newline"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,3\n", "shape"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk\n", "trailing"},
        {1, "['descr', '<f4']\n", "not a dict"},
        {1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }\n", "fortran_order"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }\n",
         "too large"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", "dimensions"},
        {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", "version"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[512];
        size_t n = make_npy(buf, cases[i].major, cases[i].dict);
        npy_header h;
        hx_err err = {{0}};
        CHECK(npy_parse_header(buf, n, &h, "case", &err) != 0, "case %zu accepted: %s", i, cases[i].dict);
        CHECK(strstr(err.msg, cases[i].expect) != NULL, "case %zu: message '%s' lacks '%s'", i, err.msg,
              cases[i].expect);
    }
    /* bad magic, truncated header */
    npy_header h;
    hx_err err;
    CHECK(npy_parse_header((const uint8_t *)"\x93NUMPX\x01\x00\x10\x00", 10, &h, "m", &err) != 0 &&
              strstr(err.msg, "magic"), "bad magic: %s", err.msg);
    uint8_t buf[512];
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n");
    CHECK(npy_parse_header(buf, n - 5, &h, "t", &err) != 0 && strstr(err.msg, "truncated"), "truncated: %s", err.msg);
    /* file level: missing and extra data bytes */
    float data[3] = {1, 2, 3};
    memcpy(buf + n, data, sizeof data);
    CHECK(write_bytes(tmp_path("short.npy"), buf, n + 7) == 0, "write");
    npy_array a;
    CHECK(npy_load(tmp_path("short.npy"), &a, &err) != 0 && strstr(err.msg, "truncated"), "short data: %s", err.msg);
    CHECK(write_bytes(tmp_path("long.npy"), buf, n + 12) == 0, "write");
    CHECK(npy_load(tmp_path("long.npy"), &a, &err) != 0 && strstr(err.msg, "unexpected bytes"), "extra: %s", err.msg);
    CHECK(write_bytes(tmp_path("exact.npy"), buf, n + 8) == 0, "write");
    CHECK(npy_load(tmp_path("exact.npy"), &a, &err) == 0, "exact: %s", err.msg);
    npy_free(&a);
    CHECK(npy_load(tmp_path("does_not_exist.npy"), &a, &err) != 0 && strstr(err.msg, "cannot open"), "%s", err.msg);
    return PASS;
}

/* A malformed dict near its end: the message quotes the header text and nothing after it (the header buffer
 * of npy_read_header is not NUL-terminated; printing it with %.20s read past its end). */
TEST(npy_error_message_stays_inside_the_header) {
    uint8_t buf[512];
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x'  \n");
    CHECK(write_bytes(tmp_path("tail.npy"), buf, n) == 0, "write");
    FILE *f = fopen(tmp_path("tail.npy"), "rb");
    CHECK(f, "open");
    npy_header h;
    hx_err err = {{0}};
    int rc = npy_read_header(f, &h, "tail.npy", &err);
    fclose(f);
    CHECK(rc != 0 && strstr(err.msg, "malformed .npy header dict near ''"), "message: '%s'", err.msg);
    return PASS;
}

static void put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A stored zip with one member arr_0.npy: the .npy header of shape/dtype, then `data` bytes; the zip records say
 * the member is `claimed` bytes long. */
static size_t make_zip(uint8_t *out, const int64_t *shape, int ndim, const uint8_t *data, size_t data_bytes,
                       uint64_t claimed) {
    char npy[256];
    size_t hl = npy_format_header(npy, sizeof npy, NPY_U8, ndim, shape);
    static const char name[] = "arr_0.npy";
    size_t nl = sizeof name - 1, k = 0;
    put_le(out + k, 0x04034b50u, 4), put_le(out + k + 4, 20, 2), memset(out + k + 6, 0, 8);
    put_le(out + k + 14, 0, 4), put_le(out + k + 18, claimed, 4), put_le(out + k + 22, claimed, 4);
    put_le(out + k + 26, nl, 2), put_le(out + k + 28, 0, 2);
    memcpy(out + k + 30, name, nl);
    k += 30 + nl;
    memcpy(out + k, npy, hl);
    memcpy(out + k + hl, data, data_bytes);
    k += hl + data_bytes;
    size_t cd = k;
    memset(out + k, 0, 46);
    put_le(out + k, 0x02014b50u, 4), put_le(out + k + 4, 20, 2), put_le(out + k + 6, 20, 2);
    put_le(out + k + 20, claimed, 4), put_le(out + k + 24, claimed, 4), put_le(out + k + 28, nl, 2);
    memcpy(out + k + 46, name, nl);
    k += 46 + nl;
    memset(out + k, 0, 22);
    put_le(out + k, 0x06054b50u, 4), put_le(out + k + 8, 1, 2), put_le(out + k + 10, 1, 2);
    put_le(out + k + 12, k - cd, 4), put_le(out + k + 16, cd, 4);
    return k + 22;
}

/* The member-size check must not wrap: a 64-byte member whose .npy shape claims 2^64 - 64 bytes
 * (96076792050570581 x 8 x 8 x 3 uint8) made 128 + (2^64 - 64) "equal" 64. */
TEST(npz_reader_member_size_check_does_not_wrap) {
    static uint8_t zip[4096];
    uint8_t data[64] = {0};
    int64_t good_shape[4] = {1, 4, 4, 3}, huge_shape[4] = {96076792050570581LL, 8, 8, 3};
    size_t n = make_zip(zip, good_shape, 4, data, 48, 128 + 48);
    CHECK(write_bytes(tmp_path("good.npz"), zip, n) == 0, "write");
    npz_reader r;
    hx_err err;
    CHECK(npz_reader_open(&r, tmp_path("good.npz"), &err) == 0 && r.n == 1, "well-formed zip refused: %s", err.msg);
    npz_reader_close(&r);
    n = make_zip(zip, huge_shape, 4, data, 64, 64);
    CHECK(write_bytes(tmp_path("wrap.npz"), zip, n) == 0, "write");
    int rc = npz_reader_open(&r, tmp_path("wrap.npz"), &err);
    if (rc == 0) {
        test_note("accepted: arr_0 declares %llu data bytes in a %zu-byte file", (unsigned long long)r.m[0].h.data_bytes,
                  n);
        npz_reader_close(&r);
    }
    CHECK(rc != 0 && strstr(err.msg, "need 128 + 18446744073709551552 bytes, the member has 64"), "message: %s",
          rc ? err.msg : "(none)");
    return PASS;
}

static void png_chunk(uint8_t *out, size_t *k, const char *type, const uint8_t *data, uint32_t len, size_t stored) {
    for (int i = 0; i < 4; i++) out[*k + i] = (uint8_t)(len >> (24 - 8 * i));
    memcpy(out + *k + 4, type, 4);
    memcpy(out + *k + 8, data, stored);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), out + *k + 4, (uInt)(4 + stored));
    for (int i = 0; i < 4; i++) out[*k + 8 + stored + i] = (uint8_t)(crc >> (24 - 8 * i));
    *k += 12 + stored;
}

/* A text chunk claiming 1.5 GiB (and a 10^6 x 10^6 image) is refused before libpng allocates for it. */
TEST(png_reader_bounds_untrusted_sizes) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t png[256], ihdr[13] = {0, 0, 0, 12, 0, 0, 0, 12, 8, 2, 0, 0, 0};
    size_t k = 8;
    memcpy(png, sig, 8);
    png_chunk(png, &k, "IHDR", ihdr, 13, 13);
    png_chunk(png, &k, "tEXt", (const uint8_t *)"parameters", 0x60000000u, 10);
    CHECK(write_bytes(tmp_path("bigtext.png"), png, k) == 0, "write");
    long base = test_peak_reset();
    ftpng_image img;
    hx_err err;
    int rc = ftpng_read(tmp_path("bigtext.png"), &img, &err);
    long kb = test_peak_growth(base);
    if (rc == 0) ftpng_free(&img);
    CHECK(rc != 0, "a truncated PNG was read");
    if (kb >= 0) CHECK(kb < 64 * 1024, "reading a PNG with a 1.5 GiB text chunk took %.0f MiB", kb / 1024.0);
    k = 8;

    for (int i = 0; i < 4; i++) ihdr[i] = ihdr[4 + i] = (uint8_t)(1000000u >> (24 - 8 * i));
    png_chunk(png, &k, "IHDR", ihdr, 13, 13);
    CHECK(write_bytes(tmp_path("bigimage.png"), png, k) == 0, "write");
    rc = ftpng_read(tmp_path("bigimage.png"), &img, &err);
    if (rc == 0) ftpng_free(&img);
    CHECK(rc != 0 && strstr(err.msg, "IHDR"), "10^6 x 10^6 image: %s", rc ? err.msg : "read");
    if (kb < 0) test_note("peak memory not measured (/proc/self/clear_refs unavailable)");
    return PASS;
}

TEST(png_write_read_text) {
    uint8_t rgb[5 * 4 * 3], gray[5 * 4];
    for (int i = 0; i < 60; i++) rgb[i] = (uint8_t)(i * 13 + 7);
    for (int i = 0; i < 20; i++) gray[i] = (uint8_t)(i * 11);
    const char *params = "class 3\nSteps: 9, Sampler: H1P5R3, CFG scale: 4, Seed: 42, Size: 5x4";
    ftpng_text texts[2] = {{"parameters", params}, {"Software", "flowturbo"}};
    hx_err err;
    CHECK(ftpng_write(tmp_path("a.png"), rgb, 5, 4, 3, texts, 2, &err) == 0, "%s", err.msg);
    ftpng_image img;
    CHECK(ftpng_read(tmp_path("a.png"), &img, &err) == 0, "%s", err.msg);
    CHECK(img.w == 5 && img.h == 4 && img.channels == 3, "size %dx%dx%d", img.w, img.h, img.channels);
    CHECK(memcmp(img.pixels, rgb, sizeof rgb) == 0, "pixels differ");
    const char *t = ftpng_find_text(&img, "parameters");
    CHECK(t && strcmp(t, params) == 0, "parameters text: %s", t ? t : "(missing)");
    CHECK(ftpng_find_text(&img, "Software") && !ftpng_find_text(&img, "nope"), "other texts");
    ftpng_free(&img);
    CHECK(ftpng_write(tmp_path("g.png"), gray, 5, 4, 1, NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(ftpng_read(tmp_path("g.png"), &img, &err) == 0 && img.channels == 1, "gray: %s", err.msg);
    CHECK(memcmp(img.pixels, gray, sizeof gray) == 0 && img.n_texts == 0, "gray pixels/texts");
    ftpng_free(&img);
    /* errors are reported, not fatal */
    CHECK(ftpng_write(tmp_path("no/such/dir.png"), rgb, 5, 4, 3, NULL, 0, &err) != 0, "bad path accepted");
    CHECK(write_bytes(tmp_path("bad.png"), "\x89PNG\r\n\x1a\nxxxx", 12) == 0, "write");
    CHECK(ftpng_read(tmp_path("bad.png"), &img, &err) != 0, "corrupt PNG accepted");
    return PASS;
}

/* Writes a test archive: arr_0 uint8 [n,h,w,3] with pixel value (i*7+3)%251, in uneven pieces, plus labels. */
static int write_test_npz(const char *path, int flags, int n, int h, int w, hx_err *err) {
    npz_writer *wr;
    if (npz_writer_open(&wr, path, flags, err) != 0) return -1;
    int64_t shape[4] = {n, h, w, 3};
    size_t total = (size_t)n * h * w * 3;
    uint8_t *data = malloc(total);
    for (size_t i = 0; i < total; i++) data[i] = (uint8_t)((i * 7 + 3) % 251);
    int rc = npz_writer_begin(wr, "arr_0", NPY_U8, 4, shape, err);
    for (size_t off = 0, piece = 1; rc == 0 && off < total; piece = piece * 3 + 1) {
        size_t k = total - off < piece ? total - off : piece;
        rc = npz_writer_data(wr, data + off, k, err);
        off += k;
    }
    if (rc == 0) rc = npz_writer_end(wr, err);
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) labels[i] = (i * 5) % 1000;
    int64_t ls[1] = {n};
    if (rc == 0) rc = npz_writer_array(wr, "labels", NPY_I64, 1, ls, labels, err);
    free(data);
    free(labels);
    if (rc != 0) {
        npz_writer_abort(wr);
        return -1;
    }
    return npz_writer_close(wr, err);
}

static test_result check_test_npz(const char *path, int n, int h, int w, int zip64) {
    npz_reader r;
    hx_err err;
    CHECK(npz_reader_open(&r, path, &err) == 0, "%s", err.msg);
    CHECK(r.n == 2 && r.zip64 == zip64, "members %d, zip64 %d", r.n, r.zip64);
    const npz_member *a = npz_reader_find(&r, "arr_0"), *l = npz_reader_find(&r, "labels");
    CHECK(a && l, "members missing");
    CHECK(a->h.dtype == NPY_U8 && a->h.ndim == 4 && a->h.shape[0] == n && a->h.shape[1] == h && a->h.shape[2] == w &&
              a->h.shape[3] == 3, "arr_0 header");
    CHECK(npz_reader_check_crc(&r, a, &err) == 0 && npz_reader_check_crc(&r, l, &err) == 0, "%s", err.msg);
    uint8_t px[64];
    uint64_t off = a->h.data_bytes / 2;
    CHECK(npz_reader_read(&r, a, off, px, sizeof px, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 64; i++) CHECK(px[i] == (uint8_t)(((off + (uint64_t)i) * 7 + 3) % 251), "pixel %d", i);
    CHECK(npz_reader_read(&r, a, a->h.data_bytes - 1, px, 2, &err) != 0, "read past the end accepted");
    npy_array lab;
    CHECK(npz_reader_load(&r, "labels", &lab, &err) == 0, "%s", err.msg);
    CHECK(lab.h.dtype == NPY_I64 && lab.h.shape[0] == n && ((int64_t *)lab.data)[n - 1] == ((n - 1) * 5) % 1000,
          "labels");
    npy_free(&lab);
    npz_reader_close(&r);
    return PASS;
}

TEST(npz_writer_and_c_reader) {
    hx_err err;
    CHECK(write_test_npz(tmp_path("t.npz"), 0, 6, 8, 9, &err) == 0, "%s", err.msg);
    struct stat sb;
    CHECK(stat(tmp_path("t.npz.partial"), &sb) != 0, "partial file left behind");
    if (check_test_npz(tmp_path("t.npz"), 6, 8, 9, 0) != PASS) return FAIL;
    CHECK(write_test_npz(tmp_path("t64.npz"), NPZ_FORCE_ZIP64, 6, 8, 9, &err) == 0, "%s", err.msg);
    if (check_test_npz(tmp_path("t64.npz"), 6, 8, 9, 1) != PASS) return FAIL;
    /* the same content twice gives the same bytes */
    CHECK(write_test_npz(tmp_path("t2.npz"), 0, 6, 8, 9, &err) == 0, "%s", err.msg);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", tmp_path("t.npz"), tmp_path("t2.npz"));
    CHECK(test_run(cmd) == 0, "npz output is not deterministic");
    /* the zip is valid for the system unzip tools too, when present */
    if (test_run("command -v unzip >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "unzip -tq %s >/dev/null 2>&1 && unzip -tq %s >/dev/null 2>&1", tmp_path("t.npz"),
                 tmp_path("t64.npz"));
        CHECK(test_run(cmd) == 0, "unzip -t rejects the archive");
    }
    return PASS;
}

TEST(npz_writer_rejects_misuse) {
    hx_err err;
    npz_writer *w;
    CHECK(npz_writer_open(&w, tmp_path("m.npz"), 0, &err) == 0, "%s", err.msg);
    int64_t s[1] = {4};
    uint8_t d[8] = {0};
    CHECK(npz_writer_data(w, d, 1, &err) != 0, "data before begin accepted");
    CHECK(npz_writer_begin(w, "x", NPY_U8, 1, s, &err) == 0, "%s", err.msg);
    CHECK(npz_writer_begin(w, "y", NPY_U8, 1, s, &err) != 0, "nested begin accepted");
    CHECK(npz_writer_data(w, d, 5, &err) != 0 && strstr(err.msg, "more than"), "overflow accepted: %s", err.msg);
    CHECK(npz_writer_data(w, d, 3, &err) == 0, "%s", err.msg);
    CHECK(npz_writer_end(w, &err) != 0 && strstr(err.msg, "short"), "short member accepted: %s", err.msg);
    npz_writer_abort(w);
    struct stat sb;
    CHECK(stat(tmp_path("m.npz.partial"), &sb) != 0 && stat(tmp_path("m.npz"), &sb) != 0, "abort left files");
    /* readers refuse non-zips and compressed members */
    npz_reader r;
    CHECK(write_bytes(tmp_path("nz.npz"), "this is not a zip file at all, no sir", 37) == 0, "write");
    CHECK(npz_reader_open(&r, tmp_path("nz.npz"), &err) != 0 && strstr(err.msg, "not a zip"), "%s", err.msg);
    return PASS;
}

TEST(npz_numpy_loads_writer_output) {
    if (!have_numpy()) SKIP_BECAUSE("/usr/bin/python3 with numpy is not available");
    hx_err err;
    CHECK(write_test_npz(tmp_path("np.npz"), 0, 5, 6, 7, &err) == 0, "%s", err.msg);
    CHECK(write_test_npz(tmp_path("np64.npz"), NPZ_FORCE_ZIP64, 5, 6, 7, &err) == 0, "%s", err.msg);
    /* write a compressed npz with numpy: the C reader must refuse it clearly */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import numpy as np, zipfile, sys\n"
             "for p in sys.argv[1:3]:\n"
             "    assert zipfile.ZipFile(p).testzip() is None\n"
             "    d = np.load(p)\n"
             "    a = d['arr_0']\n"
             "    assert a.dtype == np.uint8 and a.shape == (5, 6, 7, 3), a.shape\n"
             "    ref = ((np.arange(a.size, dtype=np.int64) * 7 + 3) %% 251).astype(np.uint8).reshape(a.shape)\n"
             "    assert (a == ref).all()\n"
             "    assert d['labels'].dtype == np.int64 and list(d['labels']) == [0, 5, 10, 15, 20]\n"
             "np.savez_compressed(sys.argv[3], arr_0=np.zeros((2, 2), np.uint8))\n"
             "np.save(sys.argv[4], np.arange(6, dtype=np.float32).reshape(2, 3))\n"
             "\" %s %s %s %s",
             tmp_path("np.npz"), tmp_path("np64.npz"), tmp_path("comp.npz"), tmp_path("np_f32.npy"));
    CHECK(test_run(cmd) == 0, "numpy could not read the npz files");
    npz_reader r;
    CHECK(npz_reader_open(&r, tmp_path("comp.npz"), &err) != 0 && strstr(err.msg, "compressed"), "%s", err.msg);
    npy_array a;
    CHECK(npy_load(tmp_path("np_f32.npy"), &a, &err) == 0, "numpy's .npy: %s", err.msg);
    CHECK(a.h.dtype == NPY_F32 && a.h.shape[0] == 2 && a.h.shape[1] == 3 && ((float *)a.data)[5] == 5.0f, "values");
    npy_free(&a);
    return PASS;
}

TEST(output_name_patterns) {
    char out[256];
    hx_err err;
    CHECK(output_name("out.png", 3, 1, out, sizeof out, &err) == 0 && strcmp(out, "out.png") == 0, "%s", out);
    CHECK(output_name("out.png", 3, 5, out, sizeof out, &err) == 0 && strcmp(out, "out_3.png") == 0, "%s", out);
    CHECK(output_name("a.b/out", 2, 5, out, sizeof out, &err) == 0 && strcmp(out, "a.b/out_2") == 0, "%s", out);
    CHECK(output_name("dir/.hidden", 2, 5, out, sizeof out, &err) == 0 && strcmp(out, "dir/.hidden_2") == 0, "%s", out);
    CHECK(output_name("img_%03d.png", 7, 9, out, sizeof out, &err) == 0 && strcmp(out, "img_007.png") == 0, "%s", out);
    CHECK(output_name("img%d.png", 12, 1, out, sizeof out, &err) == 0 && strcmp(out, "img12.png") == 0, "%s", out);
    CHECK(output_name("100%%_%d.png", 1, 2, out, sizeof out, &err) == 0 && strcmp(out, "100%_1.png") == 0, "%s", out);
    int has;
    CHECK(output_pattern_check("x_%s.png", &has, &err) != 0, "%%s accepted");
    CHECK(output_pattern_check("x_%d_%d.png", &has, &err) != 0, "two conversions accepted");
    CHECK(output_pattern_check("x_%", &has, &err) != 0, "dangling %% accepted");
    CHECK(output_pattern_check("x_%05d.png", &has, &err) == 0 && has == 1, "%s", err.msg);
    return PASS;
}

TEST(class_lists_and_labels) {
    class_list c;
    hx_err err;
    CHECK(class_list_parse("3", &c, &err) == 0 && c.n == 1 && c.ids[0] == 3, "single");
    class_list_free(&c);
    CHECK(class_list_parse("1,20,300", &c, &err) == 0 && c.n == 3 && c.ids[2] == 300, "list");
    class_list_free(&c);
    CHECK(class_list_parse("random", &c, &err) == 0 && c.random && c.n == 0, "random");
    class_list_free(&c);
    /* names are kept for class_list_resolve (which needs the model), spaces around entries dropped */
    CHECK(class_list_parse("Ankle boot, 2 ,bag", &c, &err) == 0 && c.n == 3 && c.ids[0] == -1 &&
              strcmp(c.names[0], "Ankle boot") == 0 && c.ids[1] == 2 && !c.names[1] && strcmp(c.names[2], "bag") == 0,
          "names: %s", err.msg);
    class_list_free(&c);
    const char *bad[] = {"", "1,,2", " ", "-1", "1,", "1.5", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(class_list_parse(bad[i], &c, &err) != 0, "'%s' accepted", bad[i]);
    return PASS;
}

TEST(image_grid_layout) {
    enum { S = 3, N = 5 };
    uint8_t imgs[N * S * S * 3];
    for (int k = 0; k < N; k++) memset(imgs + k * S * S * 3, 10 + k, S * S * 3);
    int w, h;
    CHECK(grid_default_cols(5) == 3 && grid_default_cols(4) == 2 && grid_default_cols(1) == 1, "default cols");
    uint8_t *g = image_grid(imgs, N, S, 3, 3, &w, &h);
    CHECK(g && w == 9 && h == 6, "grid %dx%d", w, h);
    CHECK(g[0] == 10 && g[(0 * w + 3) * 3] == 11 && g[(3 * w + 0) * 3] == 13 && g[(5 * w + 4) * 3] == 14, "tiles");
    CHECK(g[(4 * w + 7) * 3] == 0, "unused cell not black");
    free(g);
    return PASS;
}
