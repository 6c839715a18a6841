/* kernels/cuda/registry.cuh — the process-wide registry of device allocations and bias act copies
 * (registry.cu); thread-safe. */
#ifndef FT_CUDA_REGISTRY_CUH
#define FT_CUDA_REGISTRY_CUH

#include "common.cuh"

/* The act copy of a bias uploaded as FT_WEIGHT_BIAS: registered at upload, found by its f32 pointer (from any
 * backend), forgotten when the allocation holding it is freed. 0 when out of host memory. */
int cu_bias_register(const void *f32, const void *act);
const void *cu_bias_lookup(const void *f32);
/* Live device allocations (cu_alloc / cu_free). */
int cu_alloc_track(void *p, size_t bytes);
void cu_alloc_untrack(const void *p);

#endif
