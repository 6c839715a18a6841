/* tests/runner.c — runs every registered test (optionally those whose name
 * contains FILTER) and prints "tests: N passed, N failed, N skipped".
 *
 *   runner [--isolate] [FILTER]
 *
 * --isolate runs each test in its own child process (fork before the test),
 * so a CUDA fault — sticky for the rest of a process — fails only its own
 * test, and a crash or a hang (FT_TEST_TIMEOUT seconds, default 1200 with
 * --isolate) is reported as that test's failure. The parent touches no
 * backend, so every child starts with a fresh CUDA context. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* Runs one test, prints its line (and notes) and returns its result. */
static test_result run_one(const test_entry *t, int verbose) {
    notes[0] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    test_result r = t->fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    const char *tag = r == PASS ? "PASS" : r == SKIP ? "SKIP" : "FAIL";
    printf("%s %s (%.0f ms)\n", tag, t->name, ms);
    if (notes[0] && (r != PASS || verbose)) {
        char *line = strtok(notes, "\n");
        while (line) {
            printf("    %s\n", line);
            line = strtok(NULL, "\n");
        }
    }
    fflush(stdout);
    return r;
}

/* The same in a child process; a crash or a timeout is a failure. */
static test_result run_isolated(const test_entry *t, int verbose, unsigned timeout_s) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s (cannot fork)\n", t->name);
        return FAIL;
    }
    if (pid == 0) {
        if (timeout_s) alarm(timeout_s);
        exit((int)run_one(t, verbose)); /* exit, not _exit: atexit handlers clean up */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) <= SKIP) return (test_result)WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        printf("FAIL %s (%s)\n", t->name,
               WTERMSIG(status) == SIGALRM ? "timed out (FT_TEST_TIMEOUT)" : strsignal(WTERMSIG(status)));
    else
        printf("FAIL %s (exit status %d)\n", t->name, WEXITSTATUS(status));
    fflush(stdout);
    return FAIL;
}

int main(int argc, char **argv) {
    ft_reexec_with_passive_threads(argv); /* OpenMP threads sleep when idle: no spinning on a busy machine */
    const char *filter = NULL;
    int isolate = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--isolate")) isolate = 1;
        else filter = argv[i];
    }
    const char *to = getenv("FT_TEST_TIMEOUT");
    unsigned timeout_s = to && *to ? (unsigned)strtoul(to, NULL, 10) : isolate ? 1200u : 0u;
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
        test_result r = isolate ? run_isolated(&tests[i], verbose, timeout_s) : run_one(&tests[i], verbose);
        if (r == PASS) passed++;
        else if (r == SKIP) skipped++;
        else failed++;
    }
    printf("tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
