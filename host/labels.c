/* host/labels.c — see labels.h. */
#include "labels.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "cli_options.h"

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

int class_list_parse(const char *text, class_list *out, hx_err *err) {
    memset(out, 0, sizeof *out);
    if (strcmp(text, "random") == 0) {
        out->random = 1;
        return 0;
    }
    size_t len = strlen(text);
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    if (cap > CLASS_LIST_MAX) return hx_fail(err, "more than %d classes listed", CLASS_LIST_MAX);
    out->text = malloc(len + 1);
    out->ids = malloc(sizeof(int) * cap);
    out->names = calloc(cap, sizeof(char *));
    if (!out->text || !out->ids || !out->names) {
        class_list_free(out);
        return hx_fail(err, "out of memory");
    }
    memcpy(out->text, text, len + 1);
    for (char *p = out->text;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        char *item = trim(p);
        long long v;
        int i = out->n++;
        out->ids[i] = -1;
        if (!*item) {
            class_list_free(out);
            return hx_fail(err, "empty entry in the class list '%s' (expected class ids or names separated by commas, "
                                "or 'random')", text);
        }
        if (isdigit((unsigned char)*item) || *item == '-' || *item == '+') {
            if (parse_int_strict(item, 0, 2147483647LL, &v) != 0) {
                hx_fail(err, "'%s' is not a class id (ids are integers >= 0; names and 'random' work too)", item);
                class_list_free(out);
                return -1;
            }
            out->ids[i] = (int)v;
        } else {
            out->names[i] = item;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

/* "0 T-shirt/top, 1 Trouser, ..." (or the id range when the model names no classes) into buf. */
static void list_classes(const struct ft_context *ctx, int num_classes, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    if (!ft_class_name(ctx, 0)) {
        snprintf(buf, cap, "it names no classes: use ids 0..%d", num_classes - 1);
        return;
    }
    n += (size_t)snprintf(buf, cap, "its classes are ");
    for (int c = 0; c < num_classes && n + 64 < cap; c++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%d %s", c ? ", " : "", c, ft_class_name(ctx, c));
    if (n + 64 >= cap) snprintf(buf + n, cap - n, ", ...");
}

int class_list_resolve(class_list *c, const struct ft_context *ctx, const char *model, hx_err *err) {
    ft_model_info mi;
    if (ft_model_get_info(ctx, FT_ROLE_PREDICTOR, &mi) != FT_OK || !mi.loaded)
        return hx_fail(err, "no predictor loaded to look the classes up in");
    char classes[700];
    for (int i = 0; i < c->n; i++) {
        if (c->names[i]) c->ids[i] = ft_class_id(ctx, c->names[i]);
        if (c->ids[i] >= 0 && c->ids[i] < mi.num_classes) continue;
        list_classes(ctx, mi.num_classes, classes, sizeof classes);
        if (c->names[i])
            return hx_fail(err, "'%s' is not a class of %s (names are case-insensitive); %s", c->names[i], model,
                           classes);
        return hx_fail(err, "class %d is out of range: %s has %d classes (0..%d); %s", c->ids[i], model,
                       mi.num_classes, mi.num_classes - 1, classes);
    }
    return 0;
}

void class_list_free(class_list *c) {
    free(c->ids);
    free(c->names);
    free(c->text);
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
