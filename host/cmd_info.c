/* host/cmd_info.c — `flowturbo info FILE...`: the metadata (model config) and
 * the tensor table of engine safetensors files, through the library's
 * validating loader (a malformed file prints the loader's error, exit 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/finite.h"
#include "../engine/safetensors.h"
#include "../kernels/cpu/cpu_simd.h"
#include "cli_options.h"
#include "commands.h"

static void print_shape(const st_tensor *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static const char *human_count(uint64_t n, char *buf, size_t cap) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.2fB", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.2fM", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, cap, "%.1fK", (double)n / 1e3);
    else snprintf(buf, cap, "%llu", (unsigned long long)n);
    return buf;
}

static int show(const char *path, int names_only) {
    st_file f;
    ft_err err;
    if (st_open(&f, path, &err) != FT_OK) return cli_error("info", "%s", err.msg);
    if (names_only) {
        for (size_t i = 0; i < f.n_tensors; i++) printf("%s\n", f.tensors[i].name);
        st_close(&f);
        return 0;
    }
    printf("file: %s (%zu bytes)\n", path, f.size);
    if (f.n_meta) {
        printf("metadata:\n");
        size_t w = 0;
        for (size_t i = 0; i < f.n_meta; i++)
            if (strlen(f.meta_keys[i]) > w) w = strlen(f.meta_keys[i]);
        for (size_t i = 0; i < f.n_meta; i++)
            printf("  %-*s  %s\n", (int)w, f.meta_keys[i], f.meta_values[i]);
    } else {
        printf("metadata: (none)\n");
    }
    size_t wn = 4;
    for (size_t i = 0; i < f.n_tensors; i++)
        if (strlen(f.tensors[i].name) > wn) wn = strlen(f.tensors[i].name);
    uint64_t total = 0, bytes = 0, by_dtype[ST_U8 + 1] = {0}, count_dtype[ST_U8 + 1] = {0};
    const st_tensor *bad = NULL; /* the first tensor holding NaN or Inf */
    size_t bad_at = 0;
    const char *bad_kind = "";
    printf("tensors:\n  %-*s  %-5s  %-20s  %12s\n", (int)wn, "name", "dtype", "shape", "params");
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        char shape[96];
        print_shape(t, shape, sizeof shape);
        printf("  %-*s  %-5s  %-20s  %12llu\n", (int)wn, t->name, st_dtype_name(t->dtype), shape,
               (unsigned long long)t->numel);
        total += t->numel;
        bytes += t->nbytes;
        if (!bad && (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16)) {
            ft_dtype dt = t->dtype == ST_F32 ? FT_DTYPE_F32 : t->dtype == ST_F16 ? FT_DTYPE_F16 : FT_DTYPE_BF16;
            size_t at = finite_scan(t->data, dt, t->numel);
            if (at < t->numel) bad = t, bad_at = at, bad_kind = finite_kind(t->data, dt, at);
        }
        if ((int)t->dtype >= 0 && t->dtype <= ST_U8) {
            by_dtype[t->dtype] += t->numel;
            count_dtype[t->dtype]++;
        }
    }
    char h1[32];
    printf("total: %zu tensors, %llu params (%s), %llu bytes of data", f.n_tensors, (unsigned long long)total,
           human_count(total, h1, sizeof h1), (unsigned long long)bytes);
    for (int d = 0; d <= ST_U8; d++)
        if (count_dtype[d])
            printf("; %s: %llu tensors, %llu params", st_dtype_name((st_dtype)d), (unsigned long long)count_dtype[d],
                   (unsigned long long)by_dtype[d]);
    printf("\n");
    int rc = 0;
    if (bad)
        rc = cli_error("info", "%s: tensor '%s' holds %s at element %zu: the file is corrupt", path, bad->name, bad_kind,
                       bad_at);
    st_close(&f);
    return rc;
}

/* What the CPU backend runs on this machine (the same lines the CPU benchmarks print). */
static void show_cpu(void) {
    char why[256], blas[256];
    cpu_simd_reason(why, sizeof why);
    cpu_blas_describe(blas, sizeof blas);
    printf("cpu simd: %s\ncpu features: %s\ncpu conv: %s\ncpu linear: %s\nblas: %s\n", cpu_simd_path(), why,
           cpu_conv_path(), cpu_linear_path(), blas);
}

int cmd_info(int argc, char **argv) {
    int names_only = 0, cpu = 0;
    cli_opt opts[] = {
        {0, "names", OPT_FLAG, &names_only, NULL, "print only the tensor names, one a line (nothing else)", 0, 0},
        {0, "cpu", OPT_FLAG, &cpu, NULL,
         "print the CPU backend's SIMD path (AVX-512, AVX2+FMA or baseline:\nwhat the CPU has and the OS enables) "
         "and its BLAS; FILE is then optional",
         0, 0},
    };
    cli_spec spec = {"info", "flowturbo info [--names] FILE.safetensors [FILE...] | flowturbo info --cpu [FILE...]",
                     "Validates engine safetensors files with the library's loader and prints their metadata\n"
                     "(the model config), a table of tensors (name, dtype, shape, parameters) and totals; a file\n"
                     "whose weights hold NaN or Inf is reported (exit status 1).",
                     "Examples:\n  flowturbo info sit-xl-2.safetensors\n  flowturbo info --cpu", opts, (int)(sizeof opts / sizeof opts[0]),
                     64};
    char *pos[64];
    int npos;
    int pr = cli_parse(&spec, argc, argv, pos, &npos);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : EXIT_USAGE;
    if (cpu) show_cpu();
    if (npos == 0 && cpu) return 0;
    if (npos == 0) return cli_usage_error(&spec, "missing FILE (an engine safetensors file), or --cpu");
    if (cpu && !names_only) printf("\n");
    int rc = 0;
    for (int i = 0; i < npos; i++) {
        if (i && !names_only) printf("\n");
        if (show(pos[i], names_only) != 0) rc = 1;
    }
    return rc;
}
