/* engine/sampler.c — sampler config parsing, time grid, evaluation points. */
#include "sampler.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_count(const char **p, int *out) {
    if (!isdigit((unsigned char)**p)) return 0;
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (errno || v > FT_MAX_STEPS) return 0;
    *out = (int)v;
    *p = end;
    return 1;
}

/* "/s<F>" after the sampler: the grid shift F in (0, 100]. */
static ft_status parse_shift(const char *full, const char *suffix, float *shift, ft_err *err) {
    int ok = suffix[0] == 's' && suffix[1] && !isspace((unsigned char)suffix[1]);
    double v = 0.0;
    if (ok) { /* (end is only set by strtod: "/s" alone or "/s " never reads it) */
        char *end;
        errno = 0;
        v = strtod(suffix + 1, &end);
        ok = end != suffix + 1 && !*end && !errno && v > 0.0 && v <= 100.0;
    }
    if (!ok)
        return ft_fail(err, FT_ERR_INVALID_ARGUMENT,
                       "sampler '%s': the grid shift suffix must be /s<F> with F in (0, 100], e.g. heun:8/s2", full);
    *shift = (float)v;
    return FT_OK;
}

static ft_status parse_base(const char *text, ft_sampler_cfg *cfg, ft_err *err);

static ft_status parse_text(const char *text, ft_sampler_cfg *cfg, ft_err *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!text || !*text) return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "empty sampler string");
    const char *slash = strchr(text, '/');
    char base[64];
    float shift = 1.0f;
    if (slash) {
        if ((size_t)(slash - text) >= sizeof base)
            return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "unknown sampler '%.60s...'", text);
        ft_status st = parse_shift(text, slash + 1, &shift, err);
        if (st != FT_OK) return st;
        memcpy(base, text, (size_t)(slash - text));
        base[slash - text] = 0;
        if (!base[0]) return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "sampler '%s': nothing before the grid shift", text);
    }
    ft_status st = parse_base(slash ? base : text, cfg, err);
    if (st != FT_OK) return st;
    cfg->shift = shift;
    if (shift != 1.0f) {
        size_t n = strlen(cfg->name);
        snprintf(cfg->name + n, sizeof cfg->name - n, "/s%g", (double)shift);
    }
    return FT_OK;
}

static ft_status parse_base(const char *text, ft_sampler_cfg *cfg, ft_err *err) {
    const char *colon = strchr(text, ':');
    if (colon) {
        size_t klen = (size_t)(colon - text);
        const char *p = colon + 1;
        int n = -1;
        int is_euler = klen == 5 && strncasecmp(text, "euler", 5) == 0;
        int is_heun = klen == 4 && strncasecmp(text, "heun", 4) == 0;
        if (!is_euler && !is_heun)
            return ft_fail(err, FT_ERR_INVALID_ARGUMENT,
                           "unknown sampler '%s'", text);
        if (!parse_count(&p, &n) || *p)
            return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "sampler '%s': step count must be an integer in 1..%d",
                           text, FT_MAX_STEPS);
        if (n < 1) return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "sampler '%s': zero steps", text);
        cfg->euler = is_euler;
        cfg->n_h = is_heun ? n : 0;
        cfg->steps = n;
    } else {
        const char *p = text;
        const char order[] = "HPR";
        int *counts[] = {&cfg->n_h, &cfg->n_p, &cfg->n_r};
        int next = 0;
        while (*p) {
            char c = (char)toupper((unsigned char)*p);
            const char *at = strchr(order, c);
            if (!at || c == 0)
                return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "unknown sampler '%s'", text);
            int idx = (int)(at - order);
            if (idx < next)
                return ft_fail(err, FT_ERR_INVALID_ARGUMENT,
                               "sampler '%s': blocks must come in the order H, P, R, each at most once", text);
            p++;
            if (!parse_count(&p, counts[idx]))
                return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "sampler '%s': '%c' needs a block count in 0..%d", text,
                               c, FT_MAX_STEPS);
            next = idx + 1;
        }
        cfg->steps = cfg->n_h + cfg->n_p + cfg->n_r;
        if (cfg->steps == 0) return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "sampler '%s': zero steps", text);
        if (cfg->steps > FT_MAX_STEPS)
            return ft_fail(err, FT_ERR_INVALID_ARGUMENT, "sampler '%s': more than %d steps", text, FT_MAX_STEPS);
        if (cfg->n_r > 0 && cfg->n_h + cfg->n_p == 0)
            return ft_fail(err, FT_ERR_INVALID_ARGUMENT,
                           "sampler '%s': refiner blocks need at least one H or P block before them (the refiner "
                           "refines a predictor velocity)",
                           text);
    }
    if (cfg->euler) snprintf(cfg->name, sizeof cfg->name, "euler:%d", cfg->steps);
    else if (!cfg->n_p && !cfg->n_r) snprintf(cfg->name, sizeof cfg->name, "heun:%d", cfg->n_h);
    else snprintf(cfg->name, sizeof cfg->name, "H%dP%dR%d", cfg->n_h, cfg->n_p, cfg->n_r);
    return FT_OK;
}

ft_status sampler_parse(const char *text, ft_sampler_cfg *cfg, ft_err *err) {
    ft_status st = parse_text(text, cfg, err);
    if (st != FT_OK && err) sampler_append_hint(text, err);
    return st;
}

int sampler_predictor_calls(const ft_sampler_cfg *cfg) {
    if (cfg->euler) return cfg->steps;
    return 2 * cfg->n_h + cfg->n_p + (cfg->n_h == 0 && cfg->n_p > 0 ? 1 : 0);
}

int sampler_refiner_calls(const ft_sampler_cfg *cfg) { return cfg->euler ? 0 : (cfg->refine_once ? 1 : 2) * cfg->n_r; }

void sampler_time_grid(int steps, float *t) {
    /* ATen's linspace formula (its CUDA kernel and CPU scalar path): step =
     * (end - start) / (n - 1) in float; the first half counts up from start,
     * the second half down from end. torch's vectorised CPU path rounds a few
     * points 1 ulp differently (e.g. n = 10, t[6]); that moves outputs by
     * ~1e-7 relative, far inside the 1e-5 conformance bound. */
    int n = steps + 1;
    float step = 1.0f / (float)steps;
    int halfway = n / 2;
    for (int i = 0; i < n; i++) t[i] = i < halfway ? 0.0f + step * (float)i : 1.0f - step * (float)(n - 1 - i);
}

void sampler_grid(const ft_sampler_cfg *cfg, float *t, float *h) {
    int n = cfg->steps;
    if (cfg->shift == 1.0f) {
        sampler_time_grid(n, t);
        for (int k = 0; k < n; k++) h[k] = 1.0f / (float)n; /* one constant step, as released */
        return;
    }
    double s = cfg->shift;
    for (int i = 0; i <= n; i++) {
        double u = (double)i / n;
        t[i] = i == n ? 1.0f : (float)(s * u / (1.0 + (s - 1.0) * u));
    }
    for (int k = 0; k < n; k++) h[k] = t[k + 1] - t[k];
}

void sampler_used_points(const ft_sampler_cfg *cfg, unsigned char *pred_used, unsigned char *ref_used) {
    memset(pred_used, 0, (size_t)cfg->steps + 1);
    memset(ref_used, 0, (size_t)cfg->steps + 1);
    if (cfg->euler) {
        for (int i = 0; i < cfg->steps; i++) pred_used[i] = 1;
        return;
    }
    int i = 0;
    for (int k = 0; k < cfg->n_h; k++, i++) pred_used[i] = pred_used[i + 1] = 1;
    for (int k = 0; k < cfg->n_p; k++, i++) {
        if (k == 0 && cfg->n_h == 0) pred_used[i] = 1; /* no cached velocity yet */
        pred_used[i + 1] = 1;
    }
    for (int k = 0; k < cfg->n_r; k++, i++) {
        ref_used[i] = 1;
        if (!cfg->refine_once) ref_used[i + 1] = 1;
    }
}
