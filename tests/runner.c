/* tests/runner.c — runs every registered test (optionally those whose name
 * contains argv[1]) and prints "tests: N passed, N failed, N skipped". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/flowturbo.h"
#include "test.h"

#define MAX_TESTS 1024

typedef struct {
    const char *name, *file;
    test_fn fn;
} test_entry;

static test_entry tests[MAX_TESTS];
static int n_tests;
static char notes[8192];

void test_register(const char *name, const char *file, test_fn fn) {
    if (n_tests < MAX_TESTS) {
        tests[n_tests].name = name;
        tests[n_tests].file = file;
        tests[n_tests].fn = fn;
        n_tests++;
    }
}

void test_note(const char *fmt, ...) {
    size_t len = strlen(notes);
    if (len + 2 >= sizeof notes) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes + len, sizeof notes - len - 1, fmt, ap);
    va_end(ap);
    len = strlen(notes);
    notes[len] = '\n';
    notes[len + 1] = 0;
}

static int by_file_then_name(const void *a, const void *b) {
    const test_entry *x = a, *y = b;
    return strcmp(x->file, y->file);
}

int main(int argc, char **argv) {
    ft_reexec_with_passive_threads(argv); /* OpenMP threads sleep when idle: no spinning on a busy machine */
    const char *filter = argc > 1 ? argv[1] : NULL;
    int verbose = getenv("FT_TEST_VERBOSE") != NULL; /* print notes of passing tests too */
    int passed = 0, failed = 0, skipped = 0;
    /* CLI runs compare against fp32 CPU goldens: keep them on the CPU backend even on a GPU machine (the CUDA
     * backend has its own tests, test_cuda.c, with bf16 tolerances) */
    setenv("FLOWTURBO_BACKEND", "cpu", 0);
    /* stable order: files alphabetically, tests in source order within a file */
    for (int i = 1; i < n_tests; i++)
        for (int j = i; j > 0 && by_file_then_name(&tests[j - 1], &tests[j]) > 0; j--) {
            test_entry t = tests[j];
            tests[j] = tests[j - 1];
            tests[j - 1] = t;
        }
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        notes[0] = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        test_result r = tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        const char *tag = r == PASS ? "PASS" : r == SKIP ? "SKIP" : "FAIL";
        printf("%s %s (%.0f ms)\n", tag, tests[i].name, ms);
        if (notes[0] && (r != PASS || verbose)) {
            char *line = strtok(notes, "\n");
            while (line) {
                printf("    %s\n", line);
                line = strtok(NULL, "\n");
            }
        }
        fflush(stdout);
        if (r == PASS) passed++;
        else if (r == SKIP) skipped++;
        else failed++;
    }
    printf("tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
