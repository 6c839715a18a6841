/*
 * host/progress.h — sd-cli style progress bars and timing on stderr:
 *   label |=========>          | 3/9 - 12.34it/s
 * (s/it when one unit takes longer than a second). On a terminal the bar is
 * redrawn in place; otherwise (logs) the bar is printed as a line when it
 * finishes and at most every 30 seconds while it runs.
 */
#ifndef HOST_PROGRESS_H
#define HOST_PROGRESS_H

#include <stddef.h>

typedef struct {
    int tty;         /* stderr is a terminal */
    int enabled;     /* 0: draw nothing */
    int active;      /* a bar is on screen, unfinished */
    char label[64];
    int total, last_step, base;
    double t0;
    int marked, mark_base; /* pbar_mark: start time and step of the next bar */
    double mark_t;
    double last_print;     /* when a non-terminal line was last printed */
} progress_bar;

/* Monotonic seconds. */
double now_seconds(void);
/* "1h02m03s", "4m05s", "12.3s" */
const char *format_duration(double seconds, char *buf, size_t cap);

void pbar_init(progress_bar *b, int enabled);
/* Draws step/total; a new label or total, or a step going back, starts a
 * new bar (and its clock). extra (may be NULL) is appended after the rate. */
void pbar_update(progress_bar *b, const char *label, int step, int total, const char *unit, const char *extra);
/* The next bar starts its clock now, counting steps above base (the rate
 * then covers the first step too, and resumed work is not counted). */
void pbar_mark(progress_bar *b, int base);
/* Seconds per step of the current bar so far (0 before the first step). */
double pbar_seconds_per_step(const progress_bar *b);
/* Ends the line of an unfinished bar (before other output). */
void pbar_break(progress_bar *b);

/* "[INFO ] <what> completed, taking 1.23s" on stderr. */
void print_timing(const char *what, double seconds);

#endif
