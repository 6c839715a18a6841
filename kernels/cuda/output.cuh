/* kernels/cuda/output.cuh — model output into caller frames (the to_pixels
 * op) and the caller-stream hooks of backend.h (CUDA events). */
#ifndef FT_CUDA_OUTPUT_CUH
#define FT_CUDA_OUTPUT_CUH

#include "common.cuh"

cudaError_t launch_to_pixels(void *dst, ft_pixel_format format, size_t row_pitch, size_t image_pitch, const float *img,
                             int N, int C, int S, cudaStream_t stream);

void cu_to_pixels(ft_backend *be, void *dst, ft_pixel_format format, size_t row_pitch, size_t image_pitch,
                  const float *img, int N, int C, int S);
ft_status cu_event_create(ft_backend *be, void **event);
void cu_event_destroy(ft_backend *be, void *event);
ft_status cu_event_record(ft_backend *be, void *event, void *stream);
ft_status cu_stream_wait_event(ft_backend *be, void *stream, void *event);
ft_status cu_event_sync(ft_backend *be, void *event);
int cu_event_query(ft_backend *be, void *event);

#endif
