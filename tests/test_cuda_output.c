/* tests/test_cuda_output.c — the render-pipeline API on the CUDA backend:
 * ft_submit writing RGBA frames into caller-owned device memory (cudaMallocPitch)
 * ordered on a caller stream, with no host wait: the frame is read back by the
 * caller's own stream (not ft_wait) and must equal ft_generate's bytes; a
 * caller stream held up by a host function must not hold up ft_submit; host
 * frames on the CUDA backend. Every test SKIPs without a usable GPU (or in a
 * build without CUDA). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/flowturbo.h"
#include "test.h"

#ifdef FT_WITH_CUDA
#include <cuda_runtime.h>

#define IS 32

static ft_context *cuda_ctx(void) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CUDA;
    ft_context *ctx = ft_context_new(&cp);
    if (ctx && strcmp(ft_backend_name(ctx), "cuda") == 0 && ft_load_embedded(ctx, FT_ROLE_PREDICTOR) == FT_OK &&
        ft_load_embedded(ctx, FT_ROLE_REFINER) == FT_OK)
        return ctx;
    if (ctx) test_note("no CUDA context: %s", ft_last_error(ctx));
    ft_context_free(ctx);
    return NULL;
}

#define NEED_CUDA(ctx)                                                       \
    ft_context *ctx = cuda_ctx();                                            \
    if (!ctx) SKIP_BECAUSE("no usable CUDA device (the notes say why)");

static void params(ft_generate_params *gp, const int *labels, int n) {
    ft_generate_params_init(gp);
    gp->num_images = n;
    gp->labels = labels;
    gp->seed = 5;
    gp->sampler = "H1P3R2";
}

TEST(cuda_output_rgba8_on_caller_stream) {
    NEED_CUDA(ctx);
    int labels[3] = {2, 8, 0};
    ft_generate_params gp;
    params(&gp, labels, 3);
    static uint8_t rgb[3 * IS * IS * 3], host[3][IS][IS * 4 + 64];
    CHECK(ft_generate(ctx, &gp, NULL, rgb) == FT_OK, "%s", ft_last_error(ctx));
    size_t pitch = 0, width = IS * 4 + 64;
    void *dev = NULL;
    cudaStream_t s = NULL;
    CHECK(cudaMallocPitch(&dev, &pitch, width, 3 * IS) == cudaSuccess && pitch >= width, "cudaMallocPitch");
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess, "stream");
    CHECK(cudaMemsetAsync(dev, 0x5a, pitch * 3 * IS, s) == cudaSuccess, "memset"); /* before the job, on s */
    ft_frame_target t;
    ft_frame_target_init(&t);
    t.memory = FT_MEMORY_DEVICE;
    t.pixels = dev;
    t.row_pitch = pitch;
    t.image_pitch = pitch * IS;
    t.stream = s;
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK, "%s", ft_last_error(ctx));
    /* read back on the caller's stream only: ordered after the frame by the job's event */
    CHECK(cudaMemcpy2DAsync(host, sizeof host[0][0], dev, pitch, width, 3 * IS, cudaMemcpyDeviceToHost, s) ==
              cudaSuccess &&
              cudaStreamSynchronize(s) == cudaSuccess,
          "read back");
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < IS; y++)
            for (size_t x = 0; x < width; x++) {
                uint8_t want = x >= IS * 4 ? 0x5a : x % 4 == 3 ? 255 : rgb[((size_t)k * IS * IS + y * IS + x / 4) * 3 + x % 4];
                CHECK(host[k][y][x] == want, "image %d row %d byte %zu: %d, want %d", k, y, x, host[k][y][x], want);
            }
    CHECK(ft_wait(ctx) == FT_OK, "%s", ft_last_error(ctx));
    cudaStreamDestroy(s);
    cudaFree(dev);
    ft_context_free(ctx);
    return PASS;
}

TEST(cuda_output_float_frames_default_stream) {
    NEED_CUDA(ctx);
    int labels[1] = {6};
    ft_generate_params gp;
    params(&gp, labels, 1);
    static float lat[IS * IS], host[IS * IS * 4];
    CHECK(ft_generate(ctx, &gp, lat, NULL) == FT_OK, "%s", ft_last_error(ctx));
    float *dev = NULL;
    CHECK(cudaMalloc((void **)&dev, sizeof host) == cudaSuccess, "cudaMalloc");
    ft_frame_target t;
    ft_frame_target_init(&t);
    t.memory = FT_MEMORY_DEVICE;
    t.format = FT_PIXELS_RGBA_F32;
    t.pixels = dev;
    t.row_pitch = IS * 16;
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK, "%s", ft_last_error(ctx)); /* stream NULL: the legacy default stream */
    CHECK(cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost) == cudaSuccess, "read back");
    for (int i = 0; i < IS * IS; i++) {
        volatile float h = 0.5f * lat[i];
        float v = h + 0.5f;
        v = v > 1.0f ? 1.0f : v >= 0.0f ? v : 0.0f;
        CHECK(host[4 * i] == v && host[4 * i + 3] == 1.0f, "pixel %d: %g, want %g", i, host[4 * i], v);
    }
    CHECK(ft_wait(ctx) == FT_OK, "%s", ft_last_error(ctx));
    cudaFree(dev);
    ft_context_free(ctx);
    return PASS;
}

static volatile int g_release;

static void CUDART_CB hold_stream(void *user) {
    (void)user;
    for (int i = 0; i < 20000 && !g_release; i++) { /* at most 20 s */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

TEST(cuda_output_submit_does_not_wait_for_the_caller_stream) {
    NEED_CUDA(ctx);
    int labels[1] = {1};
    ft_generate_params gp;
    params(&gp, labels, 1);
    void *dev = NULL;
    cudaStream_t s = NULL;
    CHECK(cudaMalloc(&dev, IS * IS * 4) == cudaSuccess && cudaStreamCreate(&s) == cudaSuccess, "setup");
    ft_frame_target t;
    ft_frame_target_init(&t);
    t.memory = FT_MEMORY_DEVICE;
    t.pixels = dev;
    t.row_pitch = IS * 4;
    t.stream = s;
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK && ft_wait(ctx) == FT_OK, "warm-up: %s", ft_last_error(ctx));
    g_release = 0;
    CHECK(cudaLaunchHostFunc(s, hold_stream, NULL) == cudaSuccess, "host function");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ft_status st = ft_submit(ctx, &gp, &t);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    int pending = ft_pending(ctx);
    g_release = 1;
    CHECK(st == FT_OK, "%s", ft_last_error(ctx));
    CHECK(ms < 5000, "ft_submit waited %.0f ms for the held caller stream", ms);
    CHECK(pending == 1, "the job finished while the caller's stream was held");
    CHECK(ft_wait(ctx) == FT_OK && !ft_pending(ctx), "%s", ft_last_error(ctx));
    test_note("ft_submit returned in %.2f ms with the caller stream held", ms);
    cudaStreamSynchronize(s);
    cudaStreamDestroy(s);
    cudaFree(dev);
    ft_context_free(ctx);
    return PASS;
}

TEST(cuda_output_host_frames_on_cuda) {
    NEED_CUDA(ctx);
    int labels[2] = {4, 3};
    ft_generate_params gp;
    params(&gp, labels, 2);
    static uint8_t rgb[2 * IS * IS * 3], frames[2][IS][IS * 4 + 8];
    CHECK(ft_generate(ctx, &gp, NULL, rgb) == FT_OK, "%s", ft_last_error(ctx));
    ft_frame_target t;
    ft_frame_target_init(&t);
    t.pixels = frames;
    t.row_pitch = IS * 4 + 8;
    CHECK(ft_submit(ctx, &gp, &t) == FT_OK && ft_wait(ctx) == FT_OK, "%s", ft_last_error(ctx));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < IS * IS; i++)
            CHECK(frames[k][i / IS][4 * (i % IS)] == rgb[((size_t)k * IS * IS + i) * 3], "image %d pixel %d", k, i);
    ft_context_free(ctx);
    return PASS;
}

#else

TEST(cuda_output_not_built) { SKIP_BECAUSE("this build has no CUDA backend (nvcc was not found; CUDA=0)"); }

#endif
