/* host/cli_options.c — see cli_options.h. */
#include "cli_options.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int parse_int_strict(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int parse_float_strict(const char *s, float *out) {
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    float v = strtof(s, &end);
    if (errno || *end || end == s || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_usage_error(const cli_spec *spec, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "flowturbo %s: ", spec->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'flowturbo %s --help' for the list of options.\n", spec->name);
    return CLI_ERROR;
}

static cli_opt *find_long(cli_spec *spec, const char *name, size_t len) {
    for (int i = 0; i < spec->n_opts; i++)
        if (strlen(spec->opts[i].long_name) == len && strncmp(spec->opts[i].long_name, name, len) == 0)
            return &spec->opts[i];
    return NULL;
}

static cli_opt *find_short(cli_spec *spec, char c) {
    for (int i = 0; i < spec->n_opts; i++)
        if (spec->opts[i].short_name == c) return &spec->opts[i];
    return NULL;
}

static const char *kind_word(cli_opt_kind k) {
    switch (k) {
    case OPT_INT:
    case OPT_I64: return "an integer";
    case OPT_FLOAT: return "a number";
    default: return "a value";
    }
}

/* Stores value into the option's target; CLI_ERROR with a message naming the flag. */
static int store(cli_spec *spec, cli_opt *o, const char *flag, const char *value) {
    long long v;
    switch (o->kind) {
    case OPT_FLAG: *(int *)o->target = 1; break;
    case OPT_INT:
        if (parse_int_strict(value, -2147483647LL - 1, 2147483647LL, &v) != 0)
            return cli_usage_error(spec, "option '%s' expects %s, got '%s'", flag, kind_word(o->kind), value);
        *(int *)o->target = (int)v;
        break;
    case OPT_I64:
        if (parse_int_strict(value, INT64_MIN, INT64_MAX, &v) != 0)
            return cli_usage_error(spec, "option '%s' expects %s, got '%s'", flag, kind_word(o->kind), value);
        *(int64_t *)o->target = v;
        break;
    case OPT_FLOAT: {
        float f;
        if (parse_float_strict(value, &f) != 0)
            return cli_usage_error(spec, "option '%s' expects %s, got '%s'", flag, kind_word(o->kind), value);
        *(float *)o->target = f;
        break;
    }
    case OPT_STR:
        if (!*value) return cli_usage_error(spec, "option '%s' needs a non-empty value", flag);
        *(const char **)o->target = value;
        break;
    }
    o->seen = 1;
    return CLI_OK;
}

int cli_parse(cli_spec *spec, int argc, char **argv, char **pos, int *n_pos) {
    *n_pos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == 0) {
            if (*n_pos >= spec->max_positional) {
                if (spec->max_positional == 0)
                    return cli_usage_error(spec, "unexpected argument '%s' (options start with '-')", a);
                return cli_usage_error(spec, "too many arguments (at '%s')", a);
            }
            pos[(*n_pos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_print_help(spec, stdout);
            return CLI_HELP;
        }
        cli_opt *o;
        const char *value = NULL;
        char flag[128];
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            o = find_long(spec, a + 2, len);
            snprintf(flag, sizeof flag, "--%.*s", (int)len, a + 2);
            if (!o) return cli_usage_error(spec, "unknown option '%s'", flag);
            if (eq) {
                if (o->kind == OPT_FLAG) return cli_usage_error(spec, "option '%s' takes no value", flag);
                value = eq + 1;
            }
        } else {
            o = find_short(spec, a[1]);
            snprintf(flag, sizeof flag, "-%c", a[1]);
            if (!o) return cli_usage_error(spec, "unknown option '%s'", a);
            if (a[2]) {
                if (o->kind == OPT_FLAG) return cli_usage_error(spec, "unknown option '%s'", a);
                value = a + 2;
            }
        }
        if (o->kind != OPT_FLAG && !value) {
            if (i + 1 >= argc) return cli_usage_error(spec, "option '%s' needs a value (%s)", flag, o->metavar);
            value = argv[++i];
        }
        if (store(spec, o, flag, value) != CLI_OK) return CLI_ERROR;
    }
    return CLI_OK;
}

void cli_print_help(const cli_spec *spec, FILE *out) {
    fprintf(out, "Usage: %s\n\n", spec->usage);
    if (spec->summary) fprintf(out, "%s\n\n", spec->summary);
    fprintf(out, "Options:\n");
    for (int i = 0; i < spec->n_opts; i++) {
        const cli_opt *o = &spec->opts[i];
        if (o->hidden) continue;
        char left[96];
        int n = o->short_name ? snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->long_name)
                              : snprintf(left, sizeof left, "      --%s", o->long_name);
        if (o->kind != OPT_FLAG && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->metavar ? o->metavar : "VALUE");
        fprintf(out, "%-30s", left);
        if (strlen(left) >= 30) fprintf(out, "\n%30s", "");
        for (const char *h = o->help; *h; h++) {
            if (*h == '\n') fprintf(out, "\n%30s", "");
            else fputc(*h, out);
        }
        fputc('\n', out);
    }
    fprintf(out, "  -h, --help                  show this help\n");
    if (spec->epilog) fprintf(out, "\n%s\n", spec->epilog);
}

int cli_seen(const cli_spec *spec, const char *long_name) {
    for (int i = 0; i < spec->n_opts; i++)
        if (strcmp(spec->opts[i].long_name, long_name) == 0) return spec->opts[i].seen;
    return 0;
}

void cli_warn(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[WARN ] ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "flowturbo %s: error: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}
