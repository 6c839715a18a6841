/* tests/util.c — helpers shared by the test files (see test.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../engine/flowturbo.h"
#include "test.h"

const char *test_data(const char *name) {
    static char paths[8][1024];
    static int next;
    const char *dir = getenv("FT_TEST_DATA");
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir ? dir : "tests/data", name);
    return p;
}

static char tmpdir[256];

static void remove_tmpdir(void) {
    if (!tmpdir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *test_tmpdir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/flowturbo-tests-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

float *test_random_floats(size_t n, uint64_t seed) {
    float *x = malloc(n * sizeof *x + 1);
    if (x) ft_noise(x, 1, (int)n, 1, seed); /* [1, n, 1, 1] */
    return x;
}

double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (!isfinite(num) || !isfinite(den)) return INFINITY;
    if (den == 0.0) return num == 0.0 ? 0.0 : INFINITY;
    return sqrt(num / den);
}

int all_finite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

int golden_open(golden *g, const char *name) {
    ft_err err;
    g->ok = st_open(&g->f, test_data(name), &err) == FT_OK;
    if (!g->ok) test_note("cannot open fixture: %s", err.msg);
    return g->ok;
}

void golden_close(golden *g) {
    if (g->ok) st_close(&g->f);
    g->ok = 0;
}

float *golden_get(golden *g, const char *tensor, size_t *numel) {
    const st_tensor *t = g->ok ? st_find(&g->f, tensor) : NULL;
    if (!t) {
        test_note("fixture %s has no tensor '%s'", g->ok ? g->f.path : "(closed)", tensor);
        return NULL;
    }
    float *out = malloc(t->numel * sizeof(float) + 1);
    if (!out) return NULL;
    for (uint64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case ST_I32: { int32_t v; memcpy(&v, t->data + 4 * i, 4); out[i] = (float)v; break; }
        case ST_I64: { int64_t v; memcpy(&v, t->data + 8 * i, 8); out[i] = (float)v; break; }
        case ST_U8: out[i] = t->data[i]; break;
        default: break;
        }
    }
    if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) st_to_f32(t, out);
    if (numel) *numel = t->numel;
    return out;
}

ft_context *test_cpu_context(int threads) {
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = FT_BACKEND_CPU;
    cp.n_threads = threads;
    return ft_context_new(&cp);
}

int test_run(const char *cmd) {
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

const char *test_cli(void) {
    const char *p = getenv("FT_CLI");
    return p ? p : "build/flowturbo";
}

int test_cli_run(char *out, size_t out_size, const char *fmt, ...) {
    char args[4096], cmd[8192], log[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/cli_output.txt", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>&1", test_cli(), args, log);
    int rc = test_run(cmd);
    out[0] = 0;
    FILE *f = fopen(log, "rb");
    if (f) {
        size_t n = fread(out, 1, out_size - 1, f);
        out[n] = 0;
        fclose(f);
    }
    return rc;
}

unsigned char *test_read_file(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size > 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)size);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *n = (size_t)size;
    return buf;
}

const char *test_tmp_path(const char *prefix, const char *name) {
    static char paths[16][512];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, sizeof paths[0], "%s/%s%s", test_tmpdir(), prefix, name);
    return p;
}

int test_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) v = atol(line + strlen(key));
    if (f) fclose(f);
    return v;
}

long test_peak_reset(void) {
    FILE *c = fopen("/proc/self/clear_refs", "w");
    if (!c) return -1;
    int ok = fputs("5", c) >= 0;
    if (fclose(c) != 0 || !ok) return -1;
    return status_kb("VmRSS:");
}

long test_peak_growth(long base) {
    long peak = status_kb("VmHWM:");
    return base < 0 || peak < 0 ? -1 : peak - base;
}
