/* tests/test_render.c — the render-pipeline API on the CPU backend: soft
 * labels (class blends) against a model whose embedding table holds the
 * blend, per-image seeds, ft_slerp, ft_submit into pitched RGBA frames
 * (bytes equal to ft_generate's), the busy/wait rules, contexts sharing
 * weights (also on two threads at once), the embedded model, the thread
 * bound, and no worker thread left after a call. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../engine/flowturbo.h"
#include "test.h"

/* Replaces row `row` of the F32 label table in a file image with w_a E[a] + w_b E[b] (a < b, in float, the
 * order flowturbo.h documents), computed here from the file's own values. */
static int patch_table_row(uint8_t *image, size_t size, int row, int a, float w_a, int b, float w_b) {
    st_file f;
    ft_err e;
    if (st_open_memory(&f, image, size, "patch", &e) != FT_OK) return 0;
    const st_tensor *t = st_find(&f, "y_embedder.embedding_table.weight");
    int ok = t && t->dtype == ST_F32 && t->ndim == 2;
    if (ok) {
        int D = (int)t->shape[1];
        uint8_t *tab = image + (t->data - f.base);
        for (int d = 0; d < D; d++) {
            float ea, eb;
            memcpy(&ea, tab + ((size_t)a * D + d) * 4, 4);
            memcpy(&eb, tab + ((size_t)b * D + d) * 4, 4);
            volatile float ta = w_a * ea, tb = w_b * eb; /* two rounded products, then one rounded sum */
            float v = ta + tb;
            memcpy(tab + ((size_t)row * D + d) * 4, &v, 4);
        }
    }
    st_close(&f);
    return ok;
}

TEST(render_class_blend_equals_blended_embedding_table) {
    size_t ps, rs;
    uint8_t *pred = test_read_file(test_data("sit_a.safetensors"), &ps);
    uint8_t *ref = test_read_file(test_data("sit_a_refiner.safetensors"), &rs);
    CHECK(pred && ref, "cannot read the fixtures");
    ft_context *blend = test_cpu_context(1), *patched = test_cpu_context(1);
    int ok = ft_load_memory(blend, FT_ROLE_PREDICTOR, pred, ps, "a") == FT_OK &&
             ft_load_memory(blend, FT_ROLE_REFINER, ref, rs, "r") == FT_OK;
    /* image 0: 0.7 E[1] + 0.3 E[3] (class 0's row in the patched files); image 1: plain class 2 as weights */
    ok &= patch_table_row(pred, ps, 0, 1, 0.7f, 3, 0.3f) && patch_table_row(ref, rs, 0, 1, 0.7f, 3, 0.3f);
    ok &= ft_load_memory(patched, FT_ROLE_PREDICTOR, pred, ps, "p") == FT_OK &&
          ft_load_memory(patched, FT_ROLE_REFINER, ref, rs, "pr") == FT_OK;
    float w[2 * 5] = {0, 0.7f, 0, 0.3f, 0, /* image 1 */ 0, 0, 1.0f, 0, 0};
    int labels[2] = {0, 2};
    float got[2 * 4 * 8 * 8], want[2 * 4 * 8 * 8], plain[2 * 4 * 8 * 8];
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 2;
    gp.sampler = "H1P1R1";
    gp.cfg_scale = 4.0f;
    gp.class_weights = w;
    ok &= ft_generate(blend, &gp, got, NULL) == FT_OK;
    gp.class_weights = NULL;
    gp.labels = labels;
    ok &= ft_generate(patched, &gp, want, NULL) == FT_OK;
    ok &= ft_generate(blend, &gp, plain, NULL) == FT_OK;
    CHECK(ok, "setup failed: %s / %s", ft_last_error(blend), ft_last_error(patched));
    size_t n = 4 * 8 * 8;
    CHECK(memcmp(got, want, sizeof got) == 0, "blend differs from the blended table: rel L2 %.3g",
          rel_l2(got, want, 2 * n));
    CHECK(memcmp(got + n, plain + n, n * sizeof(float)) == 0, "one-hot weights differ from the label");
    CHECK(rel_l2(got, plain, n) > 1e-3, "the blend changed nothing (rel L2 %.3g to class 0)", rel_l2(got, plain, n));
    /* bad weights are refused before any work */
    w[3] = NAN;
    gp.class_weights = w;
    CHECK(ft_generate(blend, &gp, got, NULL) == FT_ERR_INVALID_ARGUMENT &&
              strstr(ft_last_error(blend), "class_weights[0][3]"),
          "NaN weight: %s", ft_last_error(blend));
    gp.class_weights = NULL;
    gp.labels = NULL;
    CHECK(ft_generate(blend, &gp, got, NULL) == FT_ERR_INVALID_ARGUMENT, "no labels and no weights accepted");
    ft_context_free(blend);
    ft_context_free(patched);
    free(pred);
    free(ref);
    return PASS;
}

TEST(render_per_image_seeds) {
    ft_context *ctx = test_cpu_context(1);
    CHECK(ft_load(ctx, FT_ROLE_PREDICTOR, test_data("sit_a.safetensors")) == FT_OK, "%s", ft_last_error(ctx));
    int labels[2] = {1, 4};
    uint64_t seeds[2] = {900, 5};
    float both[2 * 256], one[256], noise[2 * 256], from_noise[2 * 256];
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 2;
    gp.labels = labels;
    gp.sampler = "heun:3";
    gp.batch_size = 1; /* batch-size invariance holds only to GEMM rounding (test_api.c) */
    gp.seeds = seeds;
    CHECK(ft_generate(ctx, &gp, both, NULL) == FT_OK, "%s", ft_last_error(ctx));
    ft_noise(noise, 1, 4, 8, 900);
    ft_noise(noise + 256, 1, 4, 8, 5);
    gp.seeds = NULL;
    gp.noise = noise;
    CHECK(ft_generate(ctx, &gp, from_noise, NULL) == FT_OK, "%s", ft_last_error(ctx));
    CHECK(memcmp(both, from_noise, sizeof both) == 0, "seeds[] differ from their ft_noise");
    gp.noise = NULL;
    gp.num_images = 1;
    gp.labels = labels + 1;
    gp.seed = 5;
    CHECK(ft_generate(ctx, &gp, one, NULL) == FT_OK, "%s", ft_last_error(ctx));
    CHECK(memcmp(both + 256, one, sizeof one) == 0, "image 1 with seeds[1] = 5 differs from seed 5 alone");
    ft_context_free(ctx);
    return PASS;
}

TEST(render_slerp) {
    enum { N = 1000 };
    static float a[N], b[N], out[N];
    ft_noise(a, 1, 10, 10, 1);
    ft_noise(b, 1, 10, 10, 2);
    ft_slerp(out, a, b, N, 0.0f);
    CHECK(memcmp(out, a, sizeof a) == 0, "t = 0 is not a");
    ft_slerp(out, a, b, N, 1.0f);
    CHECK(memcmp(out, b, sizeof b) == 0, "t = 1 is not b");
    /* two orthonormal vectors: the point at angle t pi/2 */
    float e0[2] = {1, 0}, e1[2] = {0, 1}, p[2];
    ft_slerp(p, e0, e1, 2, 1.0f / 3.0f);
    CHECK(fabsf(p[0] - 0.8660254f) < 1e-6f && fabsf(p[1] - 0.5f) < 1e-6f, "got (%g, %g)", p[0], p[1]);
    /* the norm stays between the ends' (equal-norm ends: kept) */
    double na = 0, no = 0;
    float c[N];
    for (int i = 0; i < N; i++) c[i] = b[i] * sqrtf(1.0f); /* b as is */
    ft_slerp(out, a, c, N, 0.5f);
    for (int i = 0; i < N; i++) na += (double)a[i] * a[i], no += (double)out[i] * out[i];
    double nb = 0;
    for (int i = 0; i < N; i++) nb += (double)b[i] * b[i];
    double lo = sqrt(na < nb ? na : nb), hi = sqrt(na > nb ? na : nb);
    CHECK(sqrt(no) > 0.98 * lo && sqrt(no) < 1.02 * hi, "norm %g outside [%g, %g]", sqrt(no), lo, hi);
    /* parallel vectors fall back to a linear blend; out may alias a */
    float x[3] = {1, 2, 3}, y[3] = {2, 4, 6};
    ft_slerp(x, x, y, 3, 0.5f);
    CHECK(fabsf(x[0] - 1.5f) < 1e-6f && fabsf(x[2] - 4.5f) < 1e-6f, "parallel: got %g %g", x[0], x[2]);
    return PASS;
}

/* ---- ft_submit ---- */

enum { IS = 32, PITCH = IS * 4 + 12 };

TEST(render_submit_rgba8_matches_generate) {
    ft_context *ctx = test_cpu_context(1);
    CHECK(ft_load_embedded(ctx, FT_ROLE_PREDICTOR) == FT_OK && ft_load_embedded(ctx, FT_ROLE_REFINER) == FT_OK,
          "%s", ft_last_error(ctx));
    ft_output_shape sh;
    CHECK(ft_get_output_shape(ctx, &sh) == FT_OK && sh.image_size == IS, "shape");
    int labels[3] = {1, 7, 9};
    static uint8_t rgb[3 * IS * IS * 3], frames[3][IS + 1][PITCH];
    static float lat[3 * IS * IS], fframes[3 * IS * IS * 4];
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 3;
    gp.labels = labels;
    gp.seed = 11;
    gp.batch_size = 2; /* two batches: the second lands at image_pitch */
    gp.sampler = "heun:2";
    CHECK(ft_generate(ctx, &gp, lat, rgb) == FT_OK, "%s", ft_last_error(ctx));
    memset(frames, 0xab, sizeof frames);
    ft_frame_target t;
    ft_frame_target_init(&t);
    t.pixels = frames;
    t.row_pitch = PITCH;
    t.image_pitch = (IS + 1) * PITCH;
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK, "%s", ft_last_error(ctx));
    CHECK(ft_wait(ctx) == FT_OK, "%s", ft_last_error(ctx));
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < IS + 1; y++)
            for (int x = 0; x < PITCH; x++) {
                uint8_t want = 0xab;
                if (y < IS && x < IS * 4) want = x % 4 == 3 ? 255 : rgb[((size_t)k * IS * IS + y * IS + x / 4) * 3 + x % 4];
                CHECK(frames[k][y][x] == want, "image %d row %d byte %d: %d, want %d", k, y, x, frames[k][y][x], want);
            }
    /* float frames, tight: clamp(0.5 v + 0.5, 0, 1) of the model output (the pixel-space state) */
    t.format = FT_PIXELS_RGBA_F32;
    t.pixels = fframes;
    t.row_pitch = IS * 16;
    t.image_pitch = 0;
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK && ft_wait(ctx) == FT_OK, "%s", ft_last_error(ctx));
    for (size_t i = 0; i < (size_t)3 * IS * IS; i++) {
        volatile float h = 0.5f * lat[i];
        float v = h + 0.5f;
        v = v > 1.0f ? 1.0f : v >= 0.0f ? v : 0.0f;
        CHECK(fframes[4 * i] == v && fframes[4 * i + 1] == v && fframes[4 * i + 2] == v && fframes[4 * i + 3] == 1.0f,
              "float pixel %zu: %g, want %g", i, fframes[4 * i], v);
    }
    /* a pitch below a row is refused at submit, nothing pending */
    t.row_pitch = IS * 16 - 4;
    CHECK(ft_submit(ctx, &gp, &t) == FT_ERR_INVALID_ARGUMENT && strstr(ft_last_error(ctx), "row_pitch"),
          "short pitch: %s", ft_last_error(ctx));
    CHECK(!ft_pending(ctx) && ft_wait(ctx) == FT_OK, "a refused submit left a job");
    ft_context_free(ctx);
    return PASS;
}

static int cancel_at_sampling(ft_phase phase, int step, int total, void *user) {
    (void)step;
    (void)total;
    (void)user;
    return phase == FT_PHASE_SAMPLING;
}

TEST(render_submit_busy_wait_and_errors) {
    ft_context *ctx = test_cpu_context(1);
    CHECK(ft_load_embedded(ctx, FT_ROLE_PREDICTOR) == FT_OK, "%s", ft_last_error(ctx));
    CHECK(ft_load_embedded(ctx, FT_ROLE_VAE) == FT_ERR_UNSUPPORTED, "an embedded VAE?");
    int labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    static uint8_t frames[8 * IS * IS * 4], rgb[IS * IS * 3];
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 8;
    gp.labels = labels;
    gp.sampler = "heun:2";
    ft_frame_target t;
    ft_frame_target_init(&t);
    t.pixels = frames;
    t.row_pitch = IS * 4;
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK, "%s", ft_last_error(ctx));
    labels[0] = 9; /* the request was copied: changing it now changes nothing */
    gp.num_images = 1;
    CHECK(ft_generate(ctx, &gp, NULL, rgb) == FT_ERR_BUSY, "generate during a job");
    CHECK(ft_submit(ctx, &gp, &t) == FT_ERR_BUSY, "second submit during a job");
    CHECK(ft_load_embedded(ctx, FT_ROLE_PREDICTOR) == FT_ERR_BUSY, "load during a job");
    CHECK(strstr(ft_last_error(ctx), "submitted") != NULL, "last error during a job: %s", ft_last_error(ctx));
    CHECK(ft_wait(ctx) == FT_OK, "%s", ft_last_error(ctx));
    CHECK(!ft_pending(ctx) && ft_wait(ctx) == FT_OK, "after wait");
    labels[0] = 0;
    CHECK(ft_generate(ctx, &gp, NULL, rgb) == FT_OK, "%s", ft_last_error(ctx));
    for (int i = 0; i < IS * IS; i++) CHECK(frames[4 * i] == rgb[3 * i], "frame 0 is not class 0, seed 42 at %d", i);
    /* a job that fails in the worker reports through ft_wait */
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.progress_cb = cancel_at_sampling;
    ft_context *c2 = ft_context_new_shared(&cp, ctx);
    gp.num_images = 2;
    CHECK(ft_submit(c2, &gp, &t) == FT_OK, "%s", ft_last_error(c2));
    CHECK(ft_wait(c2) == FT_ERR_CANCELLED && strstr(ft_last_error(c2), "cancelled"), "cancel: %s", ft_last_error(c2));
    /* freeing a context with a job running waits for it */
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK, "%s", ft_last_error(ctx));
    ft_context_free(ctx);
    ft_context_free(c2);
    CHECK(ft_submit(NULL, &gp, &t) == FT_ERR_INVALID_ARGUMENT && ft_wait(NULL) == FT_ERR_INVALID_ARGUMENT &&
              ft_pending(NULL) == 0,
          "NULL context");
    return PASS;
}

/* ---- shared weights ---- */

typedef struct {
    ft_context *ctx;
    uint8_t rgb[4 * IS * IS * 3];
    ft_status st;
} gen_job;

static void *gen_thread(void *arg) {
    gen_job *j = arg;
    int labels[4] = {3, 1, 4, 1};
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 4;
    gp.labels = labels;
    gp.seed = 3;
    gp.sampler = "H1P1R1";
    j->st = ft_generate(j->ctx, &gp, NULL, j->rgb);
    return NULL;
}

TEST(render_shared_contexts_on_two_threads) {
    ft_context *src = test_cpu_context(1);
    CHECK(ft_load_embedded(src, FT_ROLE_PREDICTOR) == FT_OK && ft_load_embedded(src, FT_ROLE_REFINER) == FT_OK,
          "%s", ft_last_error(src));
    static gen_job ref, a, b;
    ref.ctx = src;
    gen_thread(&ref);
    CHECK(ref.st == FT_OK, "%s", ft_last_error(src));
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.n_threads = 1;
    a.ctx = ft_context_new_shared(&cp, src);
    b.ctx = ft_context_new_shared(&cp, src);
    ft_context_free(src); /* the models live on in a and b */
    CHECK(strcmp(ft_backend_name(a.ctx), "cpu") == 0 && ft_class_name(a.ctx, 1), "shared context without models");
    pthread_t ta, tb;
    pthread_create(&ta, NULL, gen_thread, &a);
    pthread_create(&tb, NULL, gen_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.st == FT_OK && b.st == FT_OK, "%s / %s", ft_last_error(a.ctx), ft_last_error(b.ctx));
    CHECK(memcmp(a.rgb, ref.rgb, sizeof ref.rgb) == 0 && memcmp(b.rgb, ref.rgb, sizeof ref.rgb) == 0,
          "shared contexts on two threads differ from the source's images");
    /* a load replaces the model of that context only */
    CHECK(ft_load(a.ctx, FT_ROLE_PREDICTOR, test_data("sit_a.safetensors")) == FT_OK, "%s", ft_last_error(a.ctx));
    ft_model_info ia, ib;
    ft_model_get_info(a.ctx, FT_ROLE_PREDICTOR, &ia);
    ft_model_get_info(b.ctx, FT_ROLE_PREDICTOR, &ib);
    CHECK(ia.num_classes == 5 && ib.num_classes == 10, "classes %d / %d", ia.num_classes, ib.num_classes);
    ft_context_free(a.ctx);
    ft_context_free(b.ctx);
    ft_context *orphan = ft_context_new_shared(NULL, NULL);
    CHECK(orphan && ft_load_embedded(orphan, FT_ROLE_PREDICTOR) == FT_ERR_UNSUPPORTED &&
              strstr(ft_last_error(orphan), "source context is NULL"),
          "shared from NULL: %s", ft_last_error(orphan));
    ft_context_free(orphan);
    return PASS;
}

/* ---- threads ---- */

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

TEST(render_thread_bound_and_no_threads_after_a_call) {
    ft_context *big = test_cpu_context(FT_MAX_THREADS + 1);
    CHECK(ft_load_embedded(big, FT_ROLE_PREDICTOR) == FT_ERR_UNSUPPORTED && strstr(ft_last_error(big), "above the limit"),
          "n_threads above the bound: %s", ft_last_error(big));
    ft_context_free(big);
    ft_context *many = test_cpu_context(FT_MAX_THREADS); /* capped to the cores: works */
    CHECK(ft_load_embedded(many, FT_ROLE_PREDICTOR) == FT_OK, "%s", ft_last_error(many));
    int before = count_threads();
    int labels[2] = {0, 5};
    uint8_t rgb[2 * IS * IS * 3];
    ft_generate_params gp;
    ft_generate_params_init(&gp);
    gp.num_images = 2;
    gp.labels = labels;
    gp.sampler = "heun:2";
    CHECK(ft_generate(many, &gp, NULL, rgb) == FT_OK, "%s", ft_last_error(many));
    int after = count_threads();
    /* nothing runs between calls: over 150 ms of sleep the process uses (almost) no CPU */
    double c0 = cpu_seconds();
    usleep(150000);
    double idle = cpu_seconds() - c0;
    ft_context_free(many);
    test_note("threads before %d, after %d; CPU while idle %.1f ms", before, after, idle * 1e3);
    CHECK(after <= before, "the call left %d thread(s) behind", after - before);
    CHECK(idle < 0.02, "%.1f ms of CPU while no call was running", idle * 1e3);
    return PASS;
}
