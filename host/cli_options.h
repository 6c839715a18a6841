/*
 * host/cli_options.h — table-driven command-line parsing for the CLI.
 *
 * Each command describes its options in a cli_opt table; cli_parse fills
 * the targets, accepts "--long VALUE", "--long=VALUE", "-s VALUE", "-sVALUE"
 * and "--" (end of options), and reports every problem with the option's
 * name (exit status 2 is the caller's business). --help / -h print the
 * help generated from the table.
 */
#ifndef HOST_CLI_OPTIONS_H
#define HOST_CLI_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    OPT_FLAG,  /* int *: set to 1 */
    OPT_INT,   /* int * */
    OPT_I64,   /* int64_t * */
    OPT_FLOAT, /* float *, finite */
    OPT_STR    /* const char ** (points into argv) */
} cli_opt_kind;

typedef struct {
    char short_name;       /* 'm', or 0 */
    const char *long_name; /* "model" (without the dashes) */
    cli_opt_kind kind;
    void *target;
    const char *metavar;   /* "FILE" */
    const char *help;      /* one line; "\n" starts an indented continuation */
    int hidden;            /* not listed in --help (testing aids) */
    int seen;              /* set by cli_parse */
} cli_opt;

typedef struct {
    const char *name;     /* "generate" */
    const char *usage;    /* "flowturbo generate -m MODEL [options]" */
    const char *summary;  /* paragraph after the usage line */
    const char *epilog;   /* examples etc., printed after the options */
    cli_opt *opts;
    int n_opts;
    int max_positional;   /* 0: none accepted */
} cli_spec;

enum { CLI_OK = 0, CLI_HELP = 1, CLI_ERROR = 2 };

/* Parses argv[1..argc) (argv[0] is the command name). Positional arguments
 * go to pos (room for spec->max_positional). Returns CLI_OK, CLI_HELP (help
 * printed on stdout) or CLI_ERROR (message printed on stderr). */
int cli_parse(cli_spec *spec, int argc, char **argv, char **pos, int *n_pos);
void cli_print_help(const cli_spec *spec, FILE *out);
/* 1 when the option (by long name) was given on the command line. */
int cli_seen(const cli_spec *spec, const char *long_name);
/* Prints "flowturbo <cmd>: <message>" and a hint to --help on stderr; returns 2. */
int cli_usage_error(const cli_spec *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing used by the table and by commands (whole string, range). */
int parse_int_strict(const char *s, long long lo, long long hi, long long *out);
int parse_float_strict(const char *s, float *out);

/* Prints "[WARN ] <message>" on stderr: a flag that changes nothing, and the like. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "flowturbo <cmd>: error: <message>" on stderr; returns 1 (runtime failure). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
