/* tests/fuzz/fuzz_cli.c — the command-line option parser (cli_parse with a
 * table of every option kind) and the option-value parsers: class lists,
 * output patterns and names. The input is argv, NUL-separated. */
#include <stdlib.h>
#include <string.h>

#include "../../host/cli_options.h"
#include "../../host/labels.h"
#include "../../host/output_names.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = "fuzz";
    for (char *p = text; argc < MAX_ARGS && p <= text + size; p += strlen(p) + 1) argv[argc++] = p;
    argv[argc] = NULL;
    int flag = 0, num = 0;
    int64_t seed = 0;
    float scale = 0;
    const char *classes = NULL, *output = NULL;
    cli_opt opts[] = {
        {'g', "grid", OPT_FLAG, &flag, NULL, "a flag", 0, 0},
        {'n', "num", OPT_INT, &num, "N", "an int", 0, 0},
        {'s', "seed", OPT_I64, &seed, "S", "an int64", 0, 0},
        {0, "cfg-scale", OPT_FLOAT, &scale, "F", "a float", 0, 0},
        {0, "class", OPT_STR, &classes, "LIST", "classes", 0, 0},
        {'o', "output", OPT_STR, &output, "PATTERN", "output", 1, 0},
    };
    cli_spec spec = {"fuzz", "fuzz [options] [FILE]", NULL, NULL, opts, (int)(sizeof opts / sizeof opts[0]), 2};
    char *pos[2];
    int npos;
    if (cli_parse(&spec, argc, argv, pos, &npos) == CLI_OK) {
        hx_err err;
        class_list cl;
        if (classes && class_list_parse(classes, &cl, &err) == 0) class_list_free(&cl);
        int has_index;
        if (output && output_pattern_check(output, &has_index, &err) == 0) {
            char name[256];
            for (int i = 0; i < 3; i++) output_name(output, i * 1000003, num, name, sizeof name, &err);
        }
        if (npos > spec.max_positional) abort();
    }
    free(text);
    return 0;
}
