/* host/labels.c — see labels.h. */
#include "labels.h"

#include <stdlib.h>
#include <string.h>

#include "cli_options.h"

int class_list_parse(const char *text, class_list *out, hx_err *err) {
    memset(out, 0, sizeof *out);
    if (strcmp(text, "random") == 0) {
        out->random = 1;
        return 0;
    }
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    out->ids = malloc(sizeof(int) * (len / 2 + 1));
    if (!copy || !out->ids) {
        free(copy);
        class_list_free(out);
        return hx_fail(err, "out of memory");
    }
    memcpy(copy, text, len + 1);
    char *p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        long long v;
        if (parse_int_strict(p, 0, 2147483647LL, &v) != 0) {
            hx_fail(err, "'%s' is not a class id (expected a comma-separated list of integers >= 0, or 'random')",
                    p);
            free(copy);
            class_list_free(out);
            return -1;
        }
        if (out->n >= CLASS_LIST_MAX) {
            free(copy);
            class_list_free(out);
            return hx_fail(err, "more than %d classes listed", CLASS_LIST_MAX);
        }
        out->ids[out->n++] = (int)v;
        if (!comma) break;
        p = comma + 1;
    }
    free(copy);
    return 0;
}

void class_list_free(class_list *c) {
    free(c->ids);
    memset(c, 0, sizeof *c);
}

uint64_t splitmix64_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int draw_label(uint64_t seed, uint64_t index, int num_classes) {
    if (num_classes <= 1) return 0;
    uint64_t n = (uint64_t)num_classes;
    uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
    uint64_t base = splitmix64_mix(splitmix64_mix(seed ^ 0x4C4142454C53ull) + index);
    for (uint64_t j = 0;; j++) {
        uint64_t z = splitmix64_mix(base + j);
        if (z >= threshold) return (int)(z % n);
    }
}
