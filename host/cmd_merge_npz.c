/* host/cmd_merge_npz.c — `flowturbo merge-npz -o ALL.npz SHARD0.npz SHARD1.npz ...`:
 * joins sample-fid shards, in the order given, into the archive an unsharded
 * run writes (byte for byte: the same writer, members and layout). When the
 * shards' spool states (SHARD.npz.spool/state) are present, their ranges
 * and settings are checked to be one contiguous run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_options.h"
#include "commands.h"
#include "fid_npz.h"
#include "fid_spool.h"
#include "file_util.h"
#include "npz.h"

#define MAX_SHARDS 4096

typedef struct {
    npz_reader *r;
    const npz_member **arr;
    uint64_t *start; /* first image of each shard in the merged archive */
    int n;
    size_t image_bytes;
    const int64_t *labels;
} merge_source;

static int read_shard(void *user, int part, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    merge_source *m = user;
    return npz_reader_read(&m->r[part], m->arr[part], first * m->image_bytes, buf, n * m->image_bytes, err);
}

static int merged_labels(void *user, uint64_t first, size_t n, int64_t *out, hx_err *err) {
    (void)err;
    memcpy(out, ((merge_source *)user)->labels + first, n * sizeof *out);
    return 0;
}

static int merged_images(void *user, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    merge_source *m = user;
    return fid_concat_read(m->start, m->n, read_shard, m, first, n, buf, m->image_bytes, err);
}

/* Reads "range: A B" and the config of SHARD.spool/state; 0 when absent. */
static int shard_state(const char *shard, unsigned long long *a, unsigned long long *b, char **cfg) {
    char path[4200];
    snprintf(path, sizeof path, "%s.spool/state", shard);
    char *text = read_text_file(path, 256 * 1024, NULL);
    if (!text) return 0;
    char *c = strstr(text, "\nconfig:\n");
    char *r = c ? strstr(c, "\nrange: ") : NULL;
    if (!r || sscanf(r, "\nrange: %llu %llu", a, b) != 2) {
        free(text);
        return 0;
    }
    /* the config without the lines that differ between shards */
    char *out = malloc(strlen(c) + 1);
    size_t n = 0;
    for (char *line = c + 9; out && line && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (strncmp(line, "shard:", 6) && strncmp(line, "range:", 6) && line[0] != '#') {
            memcpy(out + n, line, len);
            n += len;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (out) out[n] = 0;
    free(text);
    *cfg = out;
    return out != NULL;
}

/* Checks the shards form one run [0, N) in order, when every spool state is there. */
static int check_order(char **shards, int n) {
    unsigned long long expect = 0, a, b;
    char *first_cfg = NULL;
    int ok = 1, have = 0;
    for (int i = 0; i < n && ok; i++) {
        char *cfg = NULL;
        if (!shard_state(shards[i], &a, &b, &cfg)) continue;
        have++;
        if (a != expect && have == i + 1) {
            cli_error("merge-npz", "%s holds images [%llu, %llu) but the shards before it end at %llu: give the "
                      "shards in order (0/N, 1/N, ...) and all of them", shards[i], a, b, expect);
            ok = 0;
        }
        if (ok && first_cfg && strcmp(first_cfg, cfg) != 0) {
            char diff[2048];
            fid_config_diff(first_cfg, cfg, diff, sizeof diff);
            cli_error("merge-npz", "%s was sampled with other settings than %s (%s)", shards[i], shards[0], diff);
            ok = 0;
        }
        expect = b;
        if (!first_cfg) first_cfg = cfg;
        else free(cfg);
    }
    if (ok && have == n) {
        unsigned long long total = 0;
        const char *p = first_cfg ? strstr(first_cfg, "num: ") : NULL;
        if (p && sscanf(p, "num: %llu", &total) == 1 && total != expect) {
            cli_error("merge-npz", "the shards cover images [0, %llu) of a %llu-image run: some are missing", expect, total);
            ok = 0;
        }
    } else if (ok && have < n) {
        fprintf(stderr, "[WARN ] no spool state for %d of the shards: cannot check their order; they are joined in "
                "the order given\n", n - have);
    }
    free(first_cfg);
    return ok ? 0 : -1;
}

int cmd_merge_npz(int argc, char **argv) {
    const char *output = NULL;
    cli_opt opts[] = {
        {'o', "output", OPT_STR, &output, "FILE.npz", "the merged archive (required)", 0, 0},
    };
    cli_spec spec = {"merge-npz", "flowturbo merge-npz -o ALL.npz SHARD0.npz SHARD1.npz ...",
                     "Joins sample-fid shards (arr_0 and labels) in the order given into one archive, identical byte\n"
                     "for byte to an unsharded run with the same settings.",
                     "Example:\n  flowturbo merge-npz -o samples.npz part0.npz part1.npz part2.npz part3.npz", opts,
                     (int)(sizeof opts / sizeof opts[0]), MAX_SHARDS};
    char **pos = malloc(sizeof(char *) * MAX_SHARDS);
    if (!pos) return cli_error("merge-npz", "out of memory");
    int n;
    int pr = cli_parse(&spec, argc, argv, pos, &n);
    if (pr != CLI_OK) {
        free(pos);
        return pr == CLI_HELP ? 0 : EXIT_USAGE;
    }
    if (!output) {
        free(pos);
        return cli_usage_error(&spec, "missing -o/--output FILE.npz");
    }
    if (n <= 0) {
        free(pos);
        return cli_usage_error(&spec, "no shard files given");
    }
    for (int i = 0; i < n; i++)
        if (strcmp(pos[i], output) == 0) {
            free(pos);
            return cli_usage_error(&spec, "the output %s is also an input", output);
        }
    int rc = 1;
    size_t nn = (size_t)n & 0xffff; /* n <= MAX_SHARDS */
    merge_source m = {calloc(nn, sizeof(npz_reader)), calloc(nn, sizeof(npz_member *)),
                      calloc(nn + 1, sizeof(uint64_t)), 0, 0, NULL};
    int64_t *labels = NULL;
    hx_err err;
    if (!m.r || !m.arr || !m.start) {
        cli_error("merge-npz", "out of memory");
        goto out;
    }
    if (check_output_path("--output", output, 0, &err) != 0) {
        cli_error("merge-npz", "%s", err.msg);
        goto out;
    }
    if (check_order(pos, n) != 0) goto out;
    int has_labels = -1;
    int64_t H = 0, W = 0;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (npz_reader_open(&m.r[i], pos[i], &err) != 0) {
            cli_error("merge-npz", "%s", err.msg);
            goto out;
        }
        m.n = i + 1;
        const npz_member *arr = npz_reader_find(&m.r[i], "arr_0");
        const npz_member *lab = npz_reader_find(&m.r[i], "labels");
        char sh[128];
        if (!arr || arr->h.dtype != NPY_U8 || arr->h.ndim != 4 || arr->h.shape[3] != 3 ||
            arr->h.shape[1] != arr->h.shape[2]) {
            cli_error("merge-npz", "%s: arr_0 must be uint8 [n, S, S, 3]%s%s %s", pos[i], arr ? ", got " : " (missing)",
                      arr ? npy_dtype_name(arr->h.dtype) : "", arr ? npy_shape_string(&arr->h, sh, sizeof sh) : "");
            goto out;
        }
        if (i == 0) {
            H = arr->h.shape[1];
            W = arr->h.shape[2];
        } else if (arr->h.shape[1] != H || arr->h.shape[2] != W) {
            cli_error("merge-npz", "%s has %lldx%lld images but %s has %lldx%lld", pos[i], (long long)arr->h.shape[1],
                      (long long)arr->h.shape[2], pos[0], (long long)H, (long long)W);
            goto out;
        }
        if (has_labels < 0) has_labels = lab != NULL;
        if ((lab != NULL) != has_labels) {
            cli_error("merge-npz", "%s %s a labels array but %s %s", pos[i], lab ? "has" : "lacks", pos[0],
                      has_labels ? "has one" : "does not");
            goto out;
        }
        if (lab && (lab->h.dtype != NPY_I64 || lab->h.ndim != 1 || lab->h.shape[0] != arr->h.shape[0])) {
            cli_error("merge-npz", "%s: labels must be int64 [%lld]", pos[i], (long long)arr->h.shape[0]);
            goto out;
        }
        m.arr[i] = arr;
        m.start[i] = total;
        total += (uint64_t)arr->h.shape[0];
    }
    m.start[n] = total;
    m.image_bytes = (size_t)H * (size_t)W * 3;
    if (has_labels) {
        labels = malloc(sizeof(int64_t) * (size_t)total + 1);
        if (!labels) {
            cli_error("merge-npz", "out of memory");
            goto out;
        }
        for (int i = 0; i < n; i++) {
            const npz_member *lab = npz_reader_find(&m.r[i], "labels");
            if (npz_reader_read(&m.r[i], lab, 0, labels + m.start[i], (size_t)lab->h.data_bytes, &err) != 0) {
                cli_error("merge-npz", "%s", err.msg);
                goto out;
            }
        }
    }
    if (total == 0) {
        cli_error("merge-npz", "the shards hold no images");
        goto out;
    }
    m.labels = labels;
    if (fid_write_npz(output, total, (int)H, merged_images, labels ? merged_labels : NULL, &m, 0, &err) != 0) {
        cli_error("merge-npz", "%s", err.msg);
        goto out;
    }
    fprintf(stderr, "[INFO ] wrote %s: arr_0 uint8 [%llu, %lld, %lld, 3]%s from %d shard%s\n", output,
            (unsigned long long)total, (long long)H, (long long)W, has_labels ? ", labels int64" : "", n,
            n == 1 ? "" : "s");
    rc = 0;
out:
    for (int i = 0; i < m.n; i++) npz_reader_close(&m.r[i]);
    free(m.r);
    free(m.arr);
    free(m.start);
    free(labels);
    free(pos);
    return rc;
}
