/*
 * engine/sampler.h — sampler configurations and the exact time grid.
 *
 * Config strings: "euler:N", "heun:N" (= HN), and FlowTurbo "H<a>P<b>R<c>"
 * (any of the three parts may be omitted, e.g. "H8", "H2P4", in that order).
 * N = steps; the grid is torch.linspace(0, 1, N + 1) in float32 and every
 * update uses the single step h = t[1] - t[0] (the released code's rule).
 */
#ifndef FT_SAMPLER_H
#define FT_SAMPLER_H

#include "errors.h"

#define FT_MAX_STEPS 1000

typedef struct {
    int euler;         /* 1: Euler with n_h steps ignored, steps = euler steps */
    int n_h, n_p, n_r; /* Heun, pseudo-corrector, refiner blocks */
    int steps;
    char name[32];     /* canonical form: "euler:50", "H1P5R3" */
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
/* used[i] = 1 when the predictor (resp. refiner) is evaluated at grid point i. */
void sampler_used_points(const ft_sampler_cfg *cfg, unsigned char *pred_used, unsigned char *ref_used);

#endif
