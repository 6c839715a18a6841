/*
 * tests/test.h — the dependency-free test harness. Each test file defines
 * TEST(name) { ... return PASS; } functions that register themselves; the
 * runner (tests/runner.c) prints one line per test and ends with
 * "tests: N passed, N failed, N skipped". Tests needing a GPU or Python
 * return SKIP (with a reason) when it is absent, never PASS.
 */
#ifndef FT_TEST_H
#define FT_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/safetensors.h"

typedef enum { PASS = 0, FAIL = 1, SKIP = 2 } test_result;
typedef test_result (*test_fn)(void);

void test_register(const char *name, const char *file, test_fn fn);
void test_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST(name)                                                                            \
    static test_result name(void);                                                            \
    __attribute__((constructor)) static void register_##name(void) {                          \
        test_register(#name, __FILE__, name);                                                 \
    }                                                                                         \
    static test_result name(void)

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            test_note("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);                 \
            test_note(__VA_ARGS__);                                                           \
            return FAIL;                                                                      \
        }                                                                                     \
    } while (0)

#define SKIP_BECAUSE(...)                                                                     \
    do {                                                                                      \
        test_note(__VA_ARGS__);                                                               \
        return SKIP;                                                                          \
    } while (0)

/* Path of a file under tests/data (FT_TEST_DATA overrides the directory). */
const char *test_data(const char *name);
/* The whole file at path (malloc'd; the caller frees), its size in *n; NULL (and *n = 0) when it cannot be read. */
unsigned char *test_read_file(const char *path, size_t *n);
/* A fresh temporary directory for this test run (removed at exit). */
const char *test_tmpdir(void);

/* n standard-normal floats from the engine's noise (ft_noise) for that seed, malloc'd; NULL when out of memory. */
float *test_random_floats(size_t n, uint64_t seed);
/* ||a - b|| / ||b|| over n floats (0 when both are zero; inf on NaN). */
double rel_l2(const float *a, const float *b, size_t n);
/* 1 when every value is finite. */
int all_finite(const float *a, size_t n);

/* A golden/fixture file opened for the test; tensors read as float32. */
typedef struct {
    st_file f;
    int ok;
} golden;

int golden_open(golden *g, const char *name); /* name under tests/data; 0 + note on failure */
void golden_close(golden *g);
/* Malloc'd float32 copy of a tensor (F32/F16/BF16/I32/I64/U8 converted), or NULL + note. */
float *golden_get(golden *g, const char *tensor, size_t *numel);

/* A context on the CPU backend with that many threads (NULL only when out of memory). */
struct ft_context *test_cpu_context(int threads);

/* Runs a shell command, returns its exit status (-1 if it did not exit). */
int test_run(const char *cmd);
/* Path of the built CLI (build/flowturbo unless FT_CLI is set). */
const char *test_cli(void);
/* Runs "flowturbo ARGS" with stdout + stderr captured into out; returns its
 * exit status (-1 on a signal). */
int test_cli_run(char *out, size_t out_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* test_tmpdir()/<prefix><name> (a small ring of buffers: valid for a few calls). */
const char *test_tmp_path(const char *prefix, const char *name);
int test_file_exists(const char *path);

/* Peak resident memory: test_peak_reset() resets this process's high-water mark (/proc/self/clear_refs) and
 * returns the current RSS in kB; test_peak_growth(base) is the peak since then minus base, in kB. Both -1 when
 * /proc does not allow it (the caller SKIPs). */
long test_peak_reset(void);
long test_peak_growth(long base);

#endif
