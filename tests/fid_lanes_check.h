/* tests/fid_lanes_check.h — the FID path's double-buffering check (host/fid_lanes.c), shared by the CUDA tests
 * (emulated in CI) and the CPU tests: n images (labels (3k + 1) % 10, noise seeds 4242 + k, cfg 1.5) in batches of
 * B through two lanes and through one lane must be byte for byte equal (and, for n <= 8, equal to ft_generate on
 * the models' own context), and not vacuous (batch 1 differs from batch 0). Returns 1 when they are. */
#ifndef FT_TEST_FID_LANES_CHECK_H
#define FT_TEST_FID_LANES_CHECK_H

#include "../engine/flowturbo.h"

int fid_lanes_double_equals_single(ft_backend_kind backend, const char *pred, const char *ref, const char *vae,
                                   const char *sampler, int n, int B, int image_size);

#endif
