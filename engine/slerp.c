/* engine/slerp.c — ft_slerp: spherical interpolation of noise (walks between seeds). */
#include <math.h>

#include "flowturbo.h"

void ft_slerp(float *out, const float *a, const float *b, size_t n, float t) {
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    double c = aa > 0.0 && bb > 0.0 ? ab / sqrt(aa * bb) : 1.0;
    c = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    double wa = 1.0 - t, wb = t;
    if (t == 0.0f) wa = 1.0, wb = 0.0;
    else if (t == 1.0f) wa = 0.0, wb = 1.0;
    else if (1.0 - fabs(c) > 1e-6) {
        double w = acos(c), s = sin(w);
        wa = sin((1.0 - t) * w) / s;
        wb = sin(t * w) / s;
    }
    for (size_t i = 0; i < n; i++) out[i] = (float)(wa * a[i] + wb * b[i]);
}
