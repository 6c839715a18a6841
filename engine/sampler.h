/*
 * engine/sampler.h — sampler configurations and the exact time grid.
 *
 * Config strings: "euler:N", "heun:N" (= HN), and FlowTurbo "H<a>P<b>R<c>"
 * (any of the three parts may be omitted, e.g. "H8", "H2P4", in that order).
 * N = steps; the grid is torch.linspace(0, 1, N + 1) in float32 and every
 * update uses the single step h = t[1] - t[0] (the released code's rule).
 *
 * An optional suffix "/s<F>" (e.g. "heun:8/s2", "H2P4R2/s1.5") shifts the
 * grid towards the data end: t_i = F u / (1 + (F - 1) u) with u = i / N
 * (F > 1 puts more, smaller steps near t = 1, where a pixel-space model's
 * velocity changes fastest); step k then uses h_k = t[k+1] - t[k]. F = 1 is
 * the released uniform grid, bit for bit.
 */
#ifndef FT_SAMPLER_H
#define FT_SAMPLER_H

#include "errors.h"

#define FT_MAX_STEPS 1000

typedef struct {
    int euler;         /* 1: Euler with n_h steps ignored, steps = euler steps */
    int n_h, n_p, n_r; /* Heun, pseudo-corrector, refiner blocks */
    int steps;
    float shift;       /* grid shift F (1: uniform, the released grid) */
    /* R blocks run a guided refiner (refiner_kind "guided", set from the loaded
     * refiner, not from the string): one call per step on the B guided rows,
     * d = w + R(x, w, t_i), x += h d, carry d. 0: the released two-call step. */
    int refine_once;
    char name[32];     /* canonical form: "euler:50", "H1P5R3", "heun:8/s2" */
} ft_sampler_cfg;

/* On failure the message ends with the valid forms and, for a near miss ("heun", "Heun 8", "R3H1P5"), a
 * "did you mean" (sampler_hint.c). */
ft_status sampler_parse(const char *text, ft_sampler_cfg *cfg, ft_err *err);
/* Appends the valid forms and a suggestion for text (when one parses) to the message in err. */
void sampler_append_hint(const char *text, ft_err *err);
/* Predictor / refiner network calls per trajectory (each on 2B rows with guidance). */
int sampler_predictor_calls(const ft_sampler_cfg *cfg);
int sampler_refiner_calls(const ft_sampler_cfg *cfg);
/* t[0..steps] = torch.linspace(0, 1, steps + 1, dtype=float32), bit-exact. */
void sampler_time_grid(int steps, float *t);
/* The grid of cfg (t[0..steps], shifted when cfg->shift != 1) and the step
 * of each update h[0..steps-1] (1/steps for the uniform grid, as released). */
void sampler_grid(const ft_sampler_cfg *cfg, float *t, float *h);
/* used[i] = 1 when the predictor (resp. refiner) is evaluated at grid point i. */
void sampler_used_points(const ft_sampler_cfg *cfg, unsigned char *pred_used, unsigned char *ref_used);

#endif
