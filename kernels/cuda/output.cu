/* kernels/cuda/output.cu — model output into caller frames, and caller streams.
 *
 * to_pixels: one thread per pixel reads the C (1 or 3) planes of img
 * [N, C, S, S] and writes an RGBA pixel at n * image_pitch + y * row_pitch +
 * 4 x (RGBA8) or 16 x (RGBA F32) bytes of dst; the mapping is
 * kernels/common/pixels.h, bit-identical to the CPU backend (reference:
 * kernels/cpu/pixels.c). Bytes are stored one by one (RGBA8) and floats one
 * by one (RGBA F32): the caller's pointer and pitches need only 1- / 4-byte
 * alignment.
 *
 * Caller streams: the engine orders a job between the caller's stream and
 * its own with events (record on one stream, wait on the other), so no host
 * thread waits. A caller stream FT_DEFAULT_STREAM is the legacy default
 * stream (cudaStreamLegacy); NULL is the backend's own stream. */
#include "../common/pixels.h"
#include "output.cuh"

#define OUT_THREADS 256

__global__ void pixels_kernel(char *dst, int format, size_t row_pitch, size_t image_pitch, const float *img, int C,
                              int S, size_t total) {
    size_t plane = (size_t)S * S;
    CU_FOR(i, total) {
        size_t n = i / plane, p = i % plane;
        size_t y = p / (size_t)S, x = p % (size_t)S;
        const float *src = img + n * (size_t)C * plane + p;
        float v[3] = {src[0], src[C == 1 ? 0 : plane], src[C == 1 ? 0 : 2 * plane]};
        char *row = dst + n * image_pitch + y * row_pitch;
        if (format == FT_PIXELS_RGBA_F32) {
            float *px = (float *)row + 4 * x;
            for (int c = 0; c < 3; c++) px[c] = ft_pixel_unit(v[c]);
            px[3] = 1.0f;
        } else {
            uint8_t *px = (uint8_t *)row + 4 * x;
            for (int c = 0; c < 3; c++) px[c] = ft_pixel_u8(v[c]);
            px[3] = 255;
        }
    }
}

cudaError_t launch_to_pixels(void *dst, ft_pixel_format format, size_t row_pitch, size_t image_pitch, const float *img,
                             int N, int C, int S, cudaStream_t st) {
    size_t total = (size_t)N * S * S;
    if (!total) return cudaSuccess;
    unsigned blocks = cu_blocks(total, OUT_THREADS);
    if (blocks > 65536u) blocks = 65536u;
    FT_LAUNCH(blocks, OUT_THREADS, 0, st, pixels_kernel)((char *)dst, (int)format, row_pitch, image_pitch, img, C, S, total);
    return cudaGetLastError();
}

void cu_to_pixels(ft_backend *be, void *dst, ft_pixel_format format, size_t row_pitch, size_t image_pitch,
                  const float *img, int N, int C, int S) {
    if (!cu_enter(be)) return;
    CU_CHECK(be, launch_to_pixels(dst, format, row_pitch, image_pitch, img, N, C, S, cu_of(be)->stream));
}

static cudaStream_t stream_of(ft_backend *be, void *stream) {
    if (!stream) return cu_of(be)->stream;
    return stream == FT_DEFAULT_STREAM ? cudaStreamLegacy : (cudaStream_t)stream;
}

ft_status cu_event_create(ft_backend *be, void **event) {
    *event = NULL;
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    cudaEvent_t e = NULL;
    if (!CU_CHECK(be, cudaEventCreateWithFlags(&e, cudaEventDisableTiming))) return FT_ERR_BACKEND;
    *event = (void *)e;
    return FT_OK;
}

void cu_event_destroy(ft_backend *be, void *event) {
    if (!event || !cu_enter(be)) return;
    CU_CHECK(be, cudaEventDestroy((cudaEvent_t)event));
}

ft_status cu_event_record(ft_backend *be, void *event, void *stream) {
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    return CU_CHECK(be, cudaEventRecord((cudaEvent_t)event, stream_of(be, stream))) ? FT_OK : FT_ERR_BACKEND;
}

ft_status cu_stream_wait_event(ft_backend *be, void *stream, void *event) {
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    return CU_CHECK(be, cudaStreamWaitEvent(stream_of(be, stream), (cudaEvent_t)event, 0)) ? FT_OK : FT_ERR_BACKEND;
}

ft_status cu_event_sync(ft_backend *be, void *event) {
    if (!cu_enter(be)) return FT_ERR_BACKEND;
    return CU_CHECK(be, cudaEventSynchronize((cudaEvent_t)event)) ? FT_OK : FT_ERR_BACKEND;
}

int cu_event_query(ft_backend *be, void *event) {
    if (!cu_enter(be)) return 1;
    cudaError_t e = cudaEventQuery((cudaEvent_t)event);
    if (e == cudaErrorNotReady) {
        cudaGetLastError(); /* not an error: the work is still running */
        return 0;
    }
    CU_CHECK(be, e); /* a failure is sticky; the job is over */
    return 1;
}
