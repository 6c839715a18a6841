/*
 * engine/finite.h — finding NaN and Inf in float data: weights as they are
 * loaded (F32 / F16 / BF16 bits, possibly unaligned), noise the caller
 * passes in, and the sampler state on backends whose buffers are host
 * memory. Each scan returns the index of the first non-finite element, or n
 * when all n are finite; the common all-finite case runs as a branch-free
 * pass over blocks.
 */
#ifndef FT_FINITE_H
#define FT_FINITE_H

#include <stddef.h>

#include "flowturbo.h"

size_t finite_scan_f32(const void *data, size_t n);
/* data holds n elements of dtype (FT_DTYPE_F32, F16 or BF16). */
size_t finite_scan(const void *data, ft_dtype dtype, size_t n);
/* "NaN", "+Inf" or "-Inf" for the element at index i (which must be non-finite). */
const char *finite_kind(const void *data, ft_dtype dtype, size_t i);

#endif
