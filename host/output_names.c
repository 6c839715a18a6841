/* host/output_names.c — see output_names.h. */
#include "output_names.h"

#include <stdio.h>
#include <string.h>

#include "file_util.h"

/* Expands pattern with index (or just validates when out is NULL). */
static int expand(const char *pattern, int index, char *out, size_t cap, int *has_index, hx_err *err) {
    size_t n = 0;
    int convs = 0;
    char piece[64];
    for (const char *p = pattern; *p; p++) {
        const char *text = piece;
        size_t len;
        if (*p != '%') {
            piece[0] = *p;
            len = 1;
        } else if (p[1] == '%') {
            piece[0] = '%';
            len = 1;
            p++;
        } else {
            const char *q = p + 1;
            int zero = 0, width = 0;
            if (*q == '0') {
                zero = 1;
                q++;
            }
            while (*q >= '0' && *q <= '9' && width < 100) width = width * 10 + (*q++ - '0');
            if (*q != 'd' && *q != 'i')
                return hx_fail(err, "output pattern '%s': unsupported '%%' sequence (use %%d, %%03d or %%%% )", pattern);
            if (width > 32) return hx_fail(err, "output pattern '%s': field width too large", pattern);
            if (++convs > 1) return hx_fail(err, "output pattern '%s' has more than one %%d", pattern);
            len = (size_t)snprintf(piece, sizeof piece, zero ? "%0*d" : "%*d", width, index);
            p = q;
        }
        if (out) {
            if (n + len >= cap) return hx_fail(err, "output name from '%s' is too long", pattern);
            memcpy(out + n, text, len);
        }
        n += len;
    }
    if (out) out[n] = 0;
    if (has_index) *has_index = convs;
    return 0;
}

int output_pattern_check(const char *pattern, int *has_index, hx_err *err) {
    if (!*pattern) return hx_fail(err, "empty output name");
    return expand(pattern, 0, NULL, 0, has_index, err);
}

int output_name(const char *pattern, int index, int count, char *out, size_t cap, hx_err *err) {
    int has_index;
    if (expand(pattern, index, out, cap, &has_index, err) != 0) return -1;
    if (has_index || count <= 1) return 0;
    /* insert _<index> before the extension of the file name */
    const char *slash = strrchr(out, '/');
    char *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : out)) dot = out + strlen(out);
    char suffix[32];
    int sl = snprintf(suffix, sizeof suffix, "_%d", index);
    size_t len = strlen(out);
    if (len + (size_t)sl >= cap) return hx_fail(err, "output name from '%s' is too long", pattern);
    memmove(dot + sl, dot, strlen(dot) + 1);
    memcpy(dot, suffix, (size_t)sl);
    return 0;
}

int output_pattern_writable(const char *what, const char *pattern, hx_err *err) {
    char name[4096];
    for (int count = 1; count <= 2; count++) { /* the grid / single name, and the first of several */
        if (output_name(pattern, 0, count, name, sizeof name, err) != 0) return -1;
        if (check_output_path(what, name, OUTPUT_PATH_MAKE_PARENTS, err) != 0) return -1; /* image_output.c makes them */
    }
    return 0;
}
