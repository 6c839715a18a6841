/* tests/test_loader.c — the safetensors reader and model binding against a
 * corpus of malformed files, each of which must give its specific error
 * (and never crash: the suite also runs under ASan/UBSan). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/flowturbo.h"
#include "../engine/json.h"
#include "../engine/safetensors.h"
#include "test.h"

/* Writes [u64 header length][header][data] to a temp file; returns its path. */
static const char *write_raw(const char *name, uint64_t hlen, const char *header, size_t header_bytes,
                             const void *data, size_t data_bytes) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len, 1, 8, f);
    if (header_bytes) fwrite(header, 1, header_bytes, f);
    if (data_bytes) fwrite(data, 1, data_bytes, f);
    fclose(f);
    return path;
}

static const char *write_st(const char *name, const char *header, size_t data_bytes) {
    static unsigned char data[4096];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7);
    return write_raw(name, strlen(header), header, strlen(header), data, data_bytes);
}

/* Opens path and expects failure with `status` and a message containing `want`. */
static int expect_open_error(const char *path, ft_status status, const char *want) {
    st_file f;
    ft_err err = {{0}};
    ft_status st = st_open(&f, path, &err);
    if (st == FT_OK) {
        st_close(&f);
        test_note("%s: opened, expected an error containing '%s'", path, want);
        return 0;
    }
    if (st != status || !strstr(err.msg, want)) {
        test_note("%s: got status %d '%s', expected %d containing '%s'", path, st, err.msg, status, want);
        return 0;
    }
    return 1;
}

TEST(loader_valid_minimal_file) {
    const char *p = write_st("ok.safetensors",
                             "{\"b\":{\"dtype\":\"F16\",\"shape\":[2,1],\"data_offsets\":[16,20]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                             "\"__metadata__\":{\"k\":\"v \\u00e9\\n\"}}",
                             20);
    st_file f;
    ft_err err;
    CHECK(st_open(&f, p, &err) == FT_OK, "%s", err.msg);
    int ok = f.n_tensors == 2 && st_find(&f, "a") && st_find(&f, "b") && !st_find(&f, "c") &&
             st_find(&f, "b")->shape[0] == 2 && st_find(&f, "a")->nbytes == 16 && st_meta(&f, "k") &&
             strcmp(st_meta(&f, "k"), "v \xc3\xa9\n") == 0;
    st_close(&f);
    CHECK(ok, "tensors or metadata parsed wrong");
    return PASS;
}

TEST(loader_rejects_malformed_corpus) {
    static const char T1[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    struct {
        const char *name, *header;
        size_t data;
        const char *want;
    } cases[] = {
        {"not_json.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}", 16, "not valid JSON"},
        {"trailing.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} x", 16, "not valid JSON"},
        {"not_object.st", "[1,2]", 0, "does not start with '{'"},
        {"top_scalar.st", "{\"w\":3}", 0, "not a JSON object"},
        {"unknown_dtype.st", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
         "unknown dtype 'F64'"},
        {"size_mismatch.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 16,
         "needs 8 bytes but data_offsets give 4"},
        {"out_of_range.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 16,
         "outside the data section"},
        {"reversed.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16,
         "outside the data section"},
        {"overlap.st",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         16, "overlap"},
        {"huge_dims.st",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", 16,
         "overflows"},
        {"dim_2pow64.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,16]}}", 16,
         "not a non-negative integer"},
        {"negative_dim.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16,
         "not a non-negative integer"},
        {"float_dim.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4.0],\"data_offsets\":[0,16]}}", 16,
         "not a non-negative integer"},
        {"rank0.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 16, "rank 0"},
        {"rank5.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,4],\"data_offsets\":[0,16]}}", 16, "rank 5"},
        {"dup_name.st",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         16, "duplicate tensor name 'w'"},
        {"meta_not_string.st",
         "{\"__metadata__\":{\"depth\":28},\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
         "value of 'depth' is not a string"},
        {"unknown_field.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"x\":1}}", 16,
         "unknown field 'x'"},
        {"missing_offsets.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, "missing data_offsets"},
        {"float_offsets.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16.5]}}", 16,
         "two non-negative integers"},
        {"three_offsets.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,32]}}", 16,
         "two non-negative integers"},
        {"bad_escape.st", "{\"w\\q\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "bad escape"},
        {"nul_name.st", "{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "NUL"},
        {"lone_surrogate.st", "{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
         "surrogate"},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ok &= expect_open_error(write_st(cases[i].name, cases[i].header, cases[i].data), FT_ERR_FORMAT, cases[i].want);
    /* framing errors */
    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty.st", test_tmpdir());
    FILE *fe = fopen(empty, "wb");
    if (fe) fclose(fe);
    ok &= expect_open_error(empty, FT_ERR_FORMAT, "too short");
    ok &= expect_open_error(write_raw("short.st", 5, NULL, 0, NULL, 0), FT_ERR_FORMAT, "runs past the end");
    ok &= expect_open_error(write_raw("truncated.st", 1000, T1, strlen(T1), "xxxxxxxx", 8), FT_ERR_FORMAT,
                            "runs past the end");
    ok &= expect_open_error(write_raw("huge_header.st", (uint64_t)1 << 40, T1, strlen(T1), NULL, 0), FT_ERR_FORMAT,
                            "100 MiB");
    /* deep nesting is refused, not recursed into */
    char deep[400];
    size_t k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "{\"w\":");
    for (int i = 0; i < 100; i++) deep[k++] = '[';
    for (int i = 0; i < 100; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    ok &= expect_open_error(write_st("deep.st", deep, 0), FT_ERR_FORMAT, "nesting");
    ok &= expect_open_error("/nonexistent/dir/model.safetensors", FT_ERR_IO, "cannot open");
    ok &= expect_open_error(test_tmpdir(), FT_ERR_IO, "not a regular file");
    /* the truncated real file: a model cut in half */
    const char *src = test_data("sit_b.safetensors");
    FILE *in = fopen(src, "rb");
    char buf[65536];
    size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
    if (in) fclose(in);
    char cut[512];
    snprintf(cut, sizeof cut, "%s/cut.safetensors", test_tmpdir());
    FILE *out = fopen(cut, "wb");
    if (out) {
        fwrite(buf, 1, n / 2, out);
        fclose(out);
    }
    ok &= n > 0 && expect_open_error(cut, FT_ERR_FORMAT, "outside the data section");
    return ok ? PASS : FAIL;
}

/* Walks every token; 1 when the text is valid JSON (else the reason in err). */
static int json_valid(const char *text, int max_depth, char *err, size_t cap) {
    json_reader r;
    json_reader_init(&r, text, strlen(text), max_depth);
    json_token t;
    while ((t = json_next(&r)) != JSON_END && t != JSON_ERROR) {
    }
    snprintf(err, cap, "%s", t == JSON_ERROR ? r.error : "");
    json_reader_free(&r);
    return t == JSON_END;
}

TEST(loader_json_parser_edge_cases) {
    char err[256];
    const char *good[] = {"{}", " {\"a\" : [1, 2.5e3, -0, true, false, null, \"x\"]} ", "{\"a\":{\"b\":{}}}",
                          "{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\ud83d\\ude00\"}", "[]", "3", "\"s\""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(json_valid(good[i], JSON_MAX_DEPTH, err, sizeof err), "rejected valid JSON %s: %s", good[i], err);
    const char *bad[] = {"", "{", "{\"a\":}", "{\"a\" 1}", "{\"a\":1,}", "[1 2]", "{\"a\":01}", "{\"a\":1.}",
                         "{\"a\":tru}", "{\"a\":\"\x01\"}", "{\"a\":\"\\u12\"}", "{1:2}", "{\"a\":1}}", "[1,]",
                         "{\"a\":1 \"b\":2}", "\"\\", "[\"\\ud800\"]", "-", "1e", "[}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!json_valid(bad[i], JSON_MAX_DEPTH, err, sizeof err), "accepted invalid JSON '%s'", bad[i]);
    CHECK(!json_valid("[[[1]]]", 2, err, sizeof err) && strstr(err, "nesting deeper than 2"), "depth limit: %s", err);
    CHECK(json_valid("[[1]]", 2, err, sizeof err), "depth 2 refused: %s", err);
    json_reader r;
    json_reader_init(&r, "{\"n\":18446744073709551615}", 26, 2);
    int ok = json_next(&r) == JSON_OBJECT_BEGIN && json_next(&r) == JSON_KEY && strcmp(r.str, "n") == 0 &&
             json_next(&r) == JSON_NUMBER && r.is_uint && r.uint == UINT64_MAX && json_next(&r) == JSON_OBJECT_END &&
             json_next(&r) == JSON_END;
    json_reader_free(&r);
    CHECK(ok, "uint64 max not exact");
    return PASS;
}

/* Peak resident memory growth (kB) of opening a safetensors image in memory, or -1. */
static long open_peak_kb(const char *image, size_t size, ft_status *st, char *msg, size_t cap) {
    long base = test_peak_reset();
    st_file f;
    ft_err err;
    *st = st_open_memory(&f, image, size, "big.safetensors", &err);
    snprintf(msg, cap, "%s", *st == FT_OK ? "" : err.msg);
    long kb = test_peak_growth(base);
    if (*st == FT_OK) st_close(&f);
    return kb;
}

/* [u64 length][header] in one malloc'd image; the header holds n copies of
 * a printf item (with the index) between a prefix and a suffix. */
static char *make_image(const char *prefix, const char *item, const char *suffix, int n, size_t *size) {
    size_t cap = 64 + strlen(prefix) + strlen(suffix) + (size_t)n * (strlen(item) + 16);
    char *img = malloc(cap);
    if (!img) return NULL;
    size_t k = 8;
    k += (size_t)snprintf(img + k, cap - k, "%s", prefix);
    for (int i = 0; i < n; i++) k += (size_t)snprintf(img + k, cap - k, item, i ? "," : "", i);
    k += (size_t)snprintf(img + k, cap - k, "%s", suffix);
    for (int i = 0; i < 8; i++) img[i] = (char)(((uint64_t)(k - 8) >> (8 * i)) & 0xff);
    *size = k;
    return img;
}

/* A big header costs memory in proportion to what it describes, never ~40 bytes per header byte as a tree
 * of JSON nodes would: 100k empty tensors (a valid 5.6 MiB header) and a shape of 1.5M dimensions (refused). */
TEST(loader_header_memory_proportional_to_content) {
    size_t size;
    char *img = make_image("{", "%s\"t%07d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}", "}", 100000, &size);
    CHECK(img, "out of memory");
    ft_status st;
    char msg[1200];
    long kb = open_peak_kb(img, size, &st, msg, sizeof msg);
    free(img);
    if (kb < 0) SKIP_BECAUSE("/proc/self/clear_refs or VmHWM unavailable: cannot measure peak memory");
    CHECK(st == FT_OK, "valid header refused: %s", msg);
    double ratio = kb * 1024.0 / (double)size;
    test_note("100k tensors, %.1f MiB header: peak growth %.1f MiB (%.2f x the header)", size / 1048576.0,
              kb / 1024.0, ratio);
    CHECK(ratio < 4.0, "opening a %.1f MiB header took %.1f MiB (%.1f x)", size / 1048576.0, kb / 1024.0, ratio);
    img = make_image("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,0],\"shape\":[", "%s1", "]}}", 1500000, &size);
    CHECK(img, "out of memory");
    kb = open_peak_kb(img, size, &st, msg, sizeof msg);
    free(img);
    CHECK(st == FT_ERR_FORMAT && strstr(msg, "rank 1500000 outside 1..4"), "status %d: %s", st, msg);
    ratio = kb * 1024.0 / (double)size;
    test_note("1.5M-dimension shape, %.1f MiB header: peak growth %.1f MiB (%.2f x)", size / 1048576.0, kb / 1024.0,
              ratio);
    CHECK(ratio < 4.0, "refusing a %.1f MiB header took %.1f MiB (%.1f x)", size / 1048576.0, kb / 1024.0, ratio);
    return PASS;
}

/* 200k metadata keys are checked for duplicates by sorting (the pairwise check took minutes). The bound is not a
 * speed claim: quadratic work would take ~100x longer. */
TEST(loader_many_metadata_keys_linearithmic) {
    size_t size;
    char *img = make_image("{\"__metadata__\":{", "%s\"k%07d\":\"v\"", "}}", 200000, &size);
    CHECK(img, "out of memory");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st_file f;
    ft_err err;
    ft_status st = st_open_memory(&f, img, size, "meta.safetensors", &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    int ok = st == FT_OK && f.n_meta == 200000 && strcmp(f.meta_keys[199999], "k0199999") == 0 &&
             st_meta(&f, "k0100000") && strcmp(st_meta(&f, "k0100000"), "v") == 0;
    if (st == FT_OK) st_close(&f);
    free(img);
    CHECK(ok, "status %d: %s", st, st == FT_OK ? "metadata parsed wrong" : err.msg);
    CHECK(s < 20.0, "200k metadata keys took %.1f s", s);
    /* a duplicate far apart is still found */
    img = make_image("{\"__metadata__\":{\"k0000007\":\"x\",", "%s\"k%07d\":\"v\"", "}}", 100000, &size);
    CHECK(img, "out of memory");
    st = st_open_memory(&f, img, size, "dup.safetensors", &err);
    free(img);
    CHECK(st == FT_ERR_FORMAT && strstr(err.msg, "duplicate __metadata__ key 'k0000007'"), "status %d: %s", st,
          st == FT_OK ? "accepted" : err.msg);
    return PASS;
}

/* ---- model-level validation: a small safetensors writer over real tensors ---- */

typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t bytes;
} out_tensor;

static const char *write_model(const char *name, const out_tensor *t, int n, const char *meta_json) {
    char *header = malloc(1 << 20);
    size_t k = 0, off = 0;
    k += (size_t)sprintf(header + k, "{\"__metadata__\":%s", meta_json);
    for (int i = 0; i < n; i++) {
        k += (size_t)sprintf(header + k, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) k += (size_t)sprintf(header + k, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        k += (size_t)sprintf(header + k, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].bytes);
        off += t[i].bytes;
    }
    k += (size_t)sprintf(header + k, "}");
    unsigned char *data = malloc(off + 1);
    off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(data + off, t[i].data, t[i].bytes);
        off += t[i].bytes;
    }
    const char *p = write_raw(name, k, header, k, data, off);
    free(header);
    free(data);
    return p;
}

/* Copies sit_b's tensors (optionally editing one) and metadata into a new file. */
typedef enum { EDIT_NONE, EDIT_DROP, EDIT_RESHAPE, EDIT_I32, EDIT_EXTRA } edit_kind;

static const char *sit_b_variant(const char *out_name, edit_kind edit, const char *target, const char *meta_json) {
    st_file f;
    ft_err err;
    if (st_open(&f, test_data("sit_b.safetensors"), &err) != FT_OK) return "missing-fixture";
    out_tensor *t = calloc(f.n_tensors + 1, sizeof *t);
    int n = 0;
    static const float extra[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *s = &f.tensors[i];
        int hit = target && strcmp(s->name, target) == 0;
        if (hit && edit == EDIT_DROP) continue;
        out_tensor *o = &t[n++];
        o->name = s->name;
        o->dtype = st_dtype_name(s->dtype);
        o->ndim = s->ndim;
        memcpy(o->shape, s->shape, sizeof o->shape);
        o->data = s->data;
        o->bytes = s->nbytes;
        if (hit && edit == EDIT_RESHAPE) { /* same bytes, swapped dims */
            o->shape[0] = s->shape[1];
            o->shape[1] = s->shape[0];
        }
        if (hit && edit == EDIT_I32) o->dtype = "I32";
    }
    if (edit == EDIT_EXTRA) t[n++] = (out_tensor){"blocks.3.attn.qkv.bias", "F32", 1, {4}, extra, sizeof extra};
    const char *path = write_model(out_name, t, n, meta_json);
    free(t);
    st_close(&f);
    return path;
}

#define SIT_B_META(extra)                                                                                     \
    "{\"flowturbo.format\":\"1\",\"role\":\"predictor\",\"arch\":\"sit\",\"input_size\":\"12\","              \
    "\"in_channels\":\"3\",\"out_channels\":\"3\",\"patch_size\":\"4\",\"hidden_size\":\"48\"," extra          \
    "\"mlp_ratio\":\"2.5\",\"num_classes\":\"3\",\"learn_sigma\":\"false\",\"guided_channels\":\"3\"}"
#define SIT_B_DEPTH_HEADS "\"depth\":\"3\",\"num_heads\":\"2\","

static int expect_load_error(const char *path, ft_role role, ft_status status, const char *want) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = 1;
    ft_context *ctx = ft_context_new(&cp);
    ft_status st = ft_load(ctx, role, path);
    int ok = st == status && strstr(ft_last_error(ctx), want) != NULL;
    if (!ok)
        test_note("%s: got status %d '%s', expected %d containing '%s'", path, st, ft_last_error(ctx), status, want);
    ft_context_free(ctx);
    return ok;
}

TEST(loader_model_binding_errors) {
    int ok = 1;
    const char *meta = SIT_B_META(SIT_B_DEPTH_HEADS);
    ok &= expect_load_error(sit_b_variant("good.st", EDIT_NONE, NULL, meta), FT_ROLE_PREDICTOR, FT_OK, "");
    ok &= expect_load_error(sit_b_variant("drop.st", EDIT_DROP, "blocks.1.mlp.fc1.weight", meta), FT_ROLE_PREDICTOR,
                            FT_ERR_FORMAT, "missing tensor 'blocks.1.mlp.fc1.weight'");
    ok &= expect_load_error(sit_b_variant("shape.st", EDIT_RESHAPE, "blocks.0.mlp.fc2.weight", meta),
                            FT_ROLE_PREDICTOR, FT_ERR_FORMAT,
                            "'blocks.0.mlp.fc2.weight' has shape [120, 48], the config needs [48, 120]");
    ok &= expect_load_error(sit_b_variant("dtype.st", EDIT_I32, "pos_embed", meta), FT_ROLE_PREDICTOR, FT_ERR_FORMAT,
                            "'pos_embed' has dtype I32");
    ok &= expect_load_error(sit_b_variant("extra.st", EDIT_EXTRA, NULL, meta), FT_ROLE_PREDICTOR, FT_ERR_FORMAT,
                            "unexpected tensor 'blocks.3.attn.qkv.bias'");
    /* metadata that disagrees with the tensors or is invalid */
    ok &= expect_load_error(sit_b_variant("depth2.st", EDIT_NONE, NULL, SIT_B_META("\"depth\":\"2\",\"num_heads\":\"2\",")),
                            FT_ROLE_PREDICTOR, FT_ERR_FORMAT, "unexpected tensor 'blocks.2.");
    ok &= expect_load_error(sit_b_variant("heads.st", EDIT_NONE, NULL, SIT_B_META("\"depth\":\"3\",\"num_heads\":\"5\",")),
                            FT_ROLE_PREDICTOR, FT_ERR_FORMAT, "not divisible by num_heads 5");
    ok &= expect_load_error(sit_b_variant("nodepth.st", EDIT_NONE, NULL, SIT_B_META("\"num_heads\":\"2\",")),
                            FT_ROLE_PREDICTOR, FT_ERR_FORMAT, "metadata 'depth' is missing");
    ok &= expect_load_error(sit_b_variant("baddepth.st", EDIT_NONE, NULL, SIT_B_META("\"depth\":\"3x\",\"num_heads\":\"2\",")),
                            FT_ROLE_PREDICTOR, FT_ERR_FORMAT, "'depth' = '3x' is not an integer");
    ok &= expect_load_error(sit_b_variant("role.st", EDIT_NONE, NULL, meta), FT_ROLE_REFINER, FT_ERR_FORMAT,
                            "holds a predictor, expected a refiner");
    ok &= expect_load_error(sit_b_variant("nofmt.st", EDIT_NONE, NULL, "{\"role\":\"predictor\"}"), FT_ROLE_PREDICTOR,
                            FT_ERR_FORMAT, "not an engine weight file");
    ok &= expect_load_error(test_data("sit_a_refiner.safetensors"), FT_ROLE_PREDICTOR, FT_ERR_FORMAT,
                            "holds a refiner, expected a predictor");
    ok &= expect_load_error("/nonexistent.safetensors", FT_ROLE_PREDICTOR, FT_ERR_IO, "cannot open");
    return ok ? PASS : FAIL;
}

/* x as IEEE half, mantissa truncated (|x| within half's normal/subnormal range). */
static uint16_t to_half(float g) {
    uint32_t u;
    memcpy(&u, &g, 4);
    uint32_t sign = (u >> 16) & 0x8000u, mant = (u >> 13) & 0x3FFu;
    int e = (int)((u >> 23) & 0xFF) - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7BFFu); /* clamp to the largest finite half */
    if (e <= 0) {                                   /* subnormal half (or zero) */
        if (e < -10) return (uint16_t)sign;
        return (uint16_t)(sign | (((u & 0x7FFFFFu) | 0x800000u) >> (14 - e)));
    }
    return (uint16_t)(sign | ((uint32_t)e << 10) | mant);
}

/* The value of a finite half, by arithmetic (independent of the loader's bit conversion). */
static float half_value(uint16_t h) {
    int e = (h >> 10) & 0x1F, mant = h & 0x3FF;
    float mag = e == 0 ? ldexpf((float)mant, -24) : ldexpf((float)(1024 + mant), e - 25);
    return (h & 0x8000) ? -mag : mag;
}

/* Generates with sit_b stored as F32 and as F16 / BF16 holding the same
 * values: the outputs must be bit-identical (conversion at load is exact). */
TEST(loader_half_precision_weights) {
    st_file f;
    ft_err err;
    CHECK(st_open(&f, test_data("sit_b.safetensors"), &err) == FT_OK, "%s", err.msg);
    size_t n = f.n_tensors;
    out_tensor *t32 = calloc(n, sizeof *t32), *t16 = calloc(n, sizeof *t16), *tb = calloc(n, sizeof *tb);
    out_tensor *tb32 = calloc(n, sizeof *tb32);
    void **bufs = calloc(4 * n, sizeof *bufs);
    for (size_t i = 0; i < n; i++) {
        const st_tensor *s = &f.tensors[i];
        float *v = malloc(s->nbytes);
        uint16_t *h = malloc(s->numel * 2), *b = malloc(s->numel * 2);
        st_to_f32(s, v);
        for (uint64_t k = 0; k < s->numel; k++) {
            h[k] = to_half(v[k]);
            v[k] = half_value(h[k]); /* the F32 twin holds exactly the half values */
        }
        float *vb = malloc(s->nbytes); /* the bf16-truncated values as F32 */
        for (uint64_t k = 0; k < s->numel; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            b[k] = (uint16_t)(u >> 16);
            u &= 0xFFFF0000u;
            memcpy(&vb[k], &u, 4);
        }
        bufs[4 * i] = v, bufs[4 * i + 1] = h, bufs[4 * i + 2] = b, bufs[4 * i + 3] = vb;
        out_tensor base = {s->name, "F32", s->ndim, {s->shape[0], s->shape[1], s->shape[2], s->shape[3]}, v, s->nbytes};
        t32[i] = base;
        t16[i] = base, t16[i].dtype = "F16", t16[i].data = h, t16[i].bytes = s->numel * 2;
        tb[i] = base, tb[i].dtype = "BF16", tb[i].data = b, tb[i].bytes = s->numel * 2;
        tb32[i] = base, tb32[i].data = vb;
    }
    const char *meta = SIT_B_META(SIT_B_DEPTH_HEADS);
    char paths[4][512];
    snprintf(paths[0], sizeof paths[0], "%s", write_model("q32.st", t32, (int)n, meta));
    snprintf(paths[1], sizeof paths[1], "%s", write_model("q16.st", t16, (int)n, meta));
    snprintf(paths[2], sizeof paths[2], "%s", write_model("qb32.st", tb32, (int)n, meta));
    snprintf(paths[3], sizeof paths[3], "%s", write_model("qb16.st", tb, (int)n, meta));
    static float out[4][3 * 3 * 12 * 12];
    int ok = 1, labels[3] = {0, 1, 2};
    for (int m = 0; m < 4 && ok; m++) {
        ft_context_params cp;
        ft_context_params_init(&cp);
        cp.backend = FT_BACKEND_CPU;
        cp.n_threads = 1;
        ft_context *ctx = ft_context_new(&cp);
        ft_generate_params gp;
        ft_generate_params_init(&gp);
        gp.num_images = 3, gp.labels = labels, gp.sampler = "euler:2", gp.cfg_scale = 2.0f, gp.seed = 5;
        ok &= ft_load(ctx, FT_ROLE_PREDICTOR, paths[m]) == FT_OK && ft_generate(ctx, &gp, out[m], NULL) == FT_OK;
        if (!ok) test_note("%s: %s", paths[m], ft_last_error(ctx));
        ft_context_free(ctx);
    }
    /* each half file holds exactly its F32 twin's values; the two models differ */
    ok = ok && memcmp(out[0], out[1], sizeof out[0]) == 0 && memcmp(out[2], out[3], sizeof out[0]) == 0 &&
         all_finite(out[0], sizeof out[0] / 4) && memcmp(out[0], out[2], sizeof out[0]) != 0;
    /* conversion helpers: subnormal, infinity and NaN halves, bf16 bits */
    ok &= st_f16_to_f32(0x0001) == 0x1p-24f && st_f16_to_f32(0x03FF) == 0x3FFp-24f &&
          st_f16_to_f32(0xFC00) < -3e38f && st_f16_to_f32(0x7E00) != st_f16_to_f32(0x7E00) &&
          st_bf16_to_f32(0x3F80) == 1.0f && st_f16_to_f32(0x3C00) == 1.0f && st_f16_to_f32(0xC000) == -2.0f;
    for (size_t i = 0; i < 4 * n; i++) free(bufs[i]);
    free(bufs), free(t32), free(t16), free(tb), free(tb32);
    st_close(&f);
    CHECK(ok, "F16/BF16 weights did not load exactly");
    return PASS;
}
