/* kernels/cpu/rng.c — per-image Philox4x32-10 normal noise (bit-identical to CUDA). */
#include "../common/philox.h"
#include "cpu_ops.h"

void cpu_randn(ft_backend *be, float *out, size_t per_image, int n_images, const uint64_t *seeds) {
    (void)be;
    size_t blocks = (per_image + 3) / 4;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n_images * per_image > CPU_PAR_MIN)
    for (int b = 0; b < n_images; b++)
        for (size_t j = 0; j < blocks; j++) {
            float r[4];
            ft_philox_normal4(seeds[b], j, r);
            for (size_t e = 0; e < 4 && 4 * j + e < per_image; e++) out[(size_t)b * per_image + 4 * j + e] = r[e];
        }
}
