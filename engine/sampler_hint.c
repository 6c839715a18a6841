/* engine/sampler_hint.c — what a rejected sampler string was probably meant to be: the valid forms, and a
 * "did you mean" for near misses ("heun", "Heun 8", "eulr:20", "R3H1P5", "h1-p5-r3"). A suggestion is only
 * offered when it parses itself. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

#define HINT_MAX 64

/* Levenshtein distance of two short strings (capped inputs, so a fixed row suffices). */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la >= HINT_MAX || lb >= HINT_MAX) return HINT_MAX;
    int row[HINT_MAX + 1];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* "heun", "Heun 8", "huen:8", "euler-20", "eulr": a misspelt or mis-punctuated heun:N / euler:N. */
static int suggest_named(const char *text, char *out, size_t cap) {
    char word[HINT_MAX];
    size_t n = 0;
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    while (isalpha((unsigned char)*p) && n + 1 < sizeof word) word[n++] = (char)tolower((unsigned char)*p++);
    word[n] = 0;
    if (n < 3) return 0;
    static const struct {
        const char *name;
        int default_steps;
    } names[] = {{"heun", 8}, {"euler", 50}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (edit_distance(word, names[i].name) > 2) continue;
        while (*p && !isdigit((unsigned char)*p)) p++;
        long steps = names[i].default_steps;
        if (isdigit((unsigned char)*p)) steps = strtol(p, NULL, 10);
        snprintf(out, cap, "%s:%ld", names[i].name, steps);
        return 1;
    }
    return 0;
}

/* "R3H1P5", "h1-p5-r3", "H1 P5 R3": FlowTurbo blocks out of order or with separators. */
static int suggest_blocks(const char *text, char *out, size_t cap) {
    long count[3] = {0, 0, 0};
    int seen[3] = {0, 0, 0}, any = 0;
    for (const char *p = text; *p;) {
        if (isspace((unsigned char)*p) || *p == '-' || *p == '_' || *p == ',' || *p == '+' || *p == '/') {
            p++;
            continue;
        }
        const char *at = strchr("hpr", tolower((unsigned char)*p));
        if (!at || !*at || !isdigit((unsigned char)p[1])) return 0;
        int k = (int)(at - "hpr");
        if (seen[k]) return 0;
        char *end;
        count[k] = strtol(p + 1, &end, 10);
        seen[k] = any = 1;
        p = end;
    }
    if (!any) return 0;
    snprintf(out, cap, "H%ldP%ldR%ld", count[0], count[1], count[2]);
    return 1;
}

void sampler_append_hint(const char *text, ft_err *err) {
    char guess[HINT_MAX] = "";
    ft_sampler_cfg cfg;
    if (text && *text && strlen(text) < HINT_MAX &&
        (suggest_named(text, guess, sizeof guess) || suggest_blocks(text, guess, sizeof guess)) &&
        (sampler_parse(guess, &cfg, NULL) != FT_OK || strcmp(cfg.name, text) == 0))
        guess[0] = 0;
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof err->msg - len,
             ". Samplers are H<a>P<b>R<c> (FlowTurbo: a Heun, b pseudo-corrector, c refiner blocks, e.g. H1P5R3), "
             "heun:N or euler:N (N steps)%s%s%s",
             guess[0] ? "; did you mean '" : "", guess[0] ? cfg.name : "", guess[0] ? "'?" : "");
}
