/* engine/host_memory.c — ft_host_alloc / ft_host_free: host buffers the backend copies into fastest (pinned on
 * CUDA: the FID lanes' image buffers, host/fid_lanes.c). */
#include <stdlib.h>

#include "context.h"

void *ft_host_alloc(ft_context *ctx, size_t bytes) {
    if (!ctx || !ctx->be) return NULL;
    ft_backend *be = ctx->be;
    return be->host_alloc ? be->host_alloc(be, bytes) : malloc(bytes ? bytes : 1);
}

void ft_host_free(ft_context *ctx, void *ptr) {
    if (!ctx || !ctx->be || !ptr) return;
    ft_backend *be = ctx->be;
    if (be->host_free) be->host_free(be, ptr);
    else free(ptr);
}
