/* host/progress.c — see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 50
#define LOG_INTERVAL 30.0 /* seconds between bar lines when stderr is not a terminal */

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *format_duration(double s, char *buf, size_t cap) {
    if (s < 0) s = 0;
    if (s < 60) {
        snprintf(buf, cap, "%.1fs", s);
    } else {
        long t = (long)(s + 0.5);
        if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
        else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    }
    return buf;
}

void pbar_init(progress_bar *b, int enabled) {
    memset(b, 0, sizeof *b);
    b->enabled = enabled;
    b->tty = isatty(fileno(stderr));
}

void pbar_update(progress_bar *b, const char *label, int step, int total, const char *unit, const char *extra) {
    if (!b->enabled || total <= 0) return;
    if (!label) label = "";
    if (!b->active || strncmp(b->label, label, sizeof b->label - 1) != 0 || total != b->total ||
        step < b->last_step) {
        pbar_break(b);
        snprintf(b->label, sizeof b->label, "%s", label);
        b->total = total;
        if (b->marked) {
            b->t0 = b->mark_t;
            b->base = b->mark_base;
            b->marked = 0;
        } else {
            b->t0 = now_seconds();
            b->base = step;
        }
        b->last_print = b->t0;
    }
    b->last_step = step;
    b->active = step < total;
    if (!b->tty && step < total) {
        if (now_seconds() - b->last_print < LOG_INTERVAL) return;
        b->last_print = now_seconds();
    }
    double per = pbar_seconds_per_step(b);
    char bar[BAR_WIDTH + 1];
    int current = (int)((double)step * BAR_WIDTH / total);
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i > current ? ' ' : (i == current && i != BAR_WIDTH - 1) ? '>' : '=';
    bar[BAR_WIDTH] = 0;
    char rate[48] = ""; /* none before a step has been timed: no placeholder */
    if (per > 1.0) snprintf(rate, sizeof rate, " - %.2fs/%s", per, unit);
    else if (per > 0) snprintf(rate, sizeof rate, " - %.2f%s/s", 1.0 / per, unit);
    fprintf(stderr, "%s%s%s|%s| %d/%d%s%s%s%s", b->tty ? "\r" : "", label, *label ? " " : "", bar, step, total, rate,
            extra && *extra ? " - " : "", extra ? extra : "", b->tty ? "\033[K" : "");
    if (step >= total || !b->tty) fputc('\n', stderr);
    fflush(stderr);
}

void pbar_mark(progress_bar *b, int base) {
    b->marked = 1;
    b->mark_base = base;
    b->mark_t = now_seconds();
}

double pbar_seconds_per_step(const progress_bar *b) {
    return b->last_step > b->base ? (now_seconds() - b->t0) / (b->last_step - b->base) : 0.0;
}

void pbar_break(progress_bar *b) {
    if (b->active && b->tty) fputc('\n', stderr);
    b->active = 0;
}

void print_timing(const char *what, double seconds) {
    fprintf(stderr, "[INFO ] %s completed, taking %.2fs\n", what, seconds);
}
