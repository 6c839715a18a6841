/* engine/json.c — strict recursive-descent JSON parser (see json.h). */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t n, pos;
    char *err;
    size_t err_size;
    int failed;
} parser;

static void fail(parser *p, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = 1;
    if (!p->err || !p->err_size) return;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->err_size, "%s at byte %zu", what, p->pos);
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hex4(parser *p, unsigned *out) {
    if (p->n - p->pos < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    p->pos += 4;
    *out = v;
    return 1;
}

static size_t put_utf8(char *dst, unsigned cp) {
    if (cp < 0x80) { dst[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string at p->pos (which is at '"'); decoded copy in *out. */
static int parse_string(parser *p, char **out, size_t *out_len) {
    p->pos++; /* opening quote */
    size_t start = p->pos;
    size_t end = start;
    while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->n) { fail(p, "unterminated string"); return 0; }
    /* decoded size <= raw size (escapes shrink; \uXXXX is 6 raw bytes for <= 4) */
    char *buf = malloc(end - start + 1);
    if (!buf) { fail(p, "out of memory"); return 0; }
    size_t k = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) { fail(p, "control character in string"); free(buf); return 0; }
        if (c != '\\') { buf[k++] = (char)c; p->pos++; continue; }
        p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"': buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; break;
        case '/': buf[k++] = '/'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!hex4(p, &cp)) { fail(p, "bad \\u escape"); free(buf); return 0; }
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (p->pos + 2 > end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    fail(p, "unpaired surrogate"); free(buf); return 0;
                }
                p->pos += 2;
                if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, "bad surrogate pair"); free(buf); return 0;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                fail(p, "unpaired surrogate"); free(buf); return 0;
            }
            k += put_utf8(buf + k, cp);
            break;
        }
        default: fail(p, "bad escape"); free(buf); return 0;
        }
    }
    p->pos = end + 1;
    buf[k] = 0;
    *out = buf;
    *out_len = k;
    return 1;
}

static int parse_number(parser *p, json_value *v) {
    size_t start = p->pos;
    int negative = 0, integral = 1;
    if (p->s[p->pos] == '-') { negative = 1; p->pos++; }
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad number"); return 0; }
    if (p->s[p->pos] == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9') {
        fail(p, "leading zero in number"); return 0;
    }
    uint64_t u = 0;
    int overflow = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = (unsigned)(p->s[p->pos] - '0');
        if (u > (UINT64_MAX - d) / 10) overflow = 1;
        else u = u * 10 + d;
        p->pos++;
    }
    if (p->pos < p->n && p->s[p->pos] == '.') {
        integral = 0;
        p->pos++;
        if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad fraction"); return 0; }
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = 0;
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad exponent"); return 0; }
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    char tmp[64];
    size_t len = p->pos - start;
    if (len >= sizeof tmp) len = sizeof tmp - 1;
    memcpy(tmp, p->s + start, len);
    tmp[len] = 0;
    v->type = JSON_NUMBER;
    v->number = strtod(tmp, NULL);
    v->is_uint = integral && !negative && !overflow;
    v->uint = v->is_uint ? u : 0;
    return 1;
}

static int match(parser *p, const char *word) {
    size_t len = strlen(word);
    if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0) return 0;
    p->pos += len;
    return 1;
}

static int parse_value(parser *p, json_value *v, int depth);

static int grow(parser *p, json_value *v, size_t *cap, int with_keys) {
    if (v->count < *cap) return 1;
    size_t ncap = *cap ? *cap * 2 : 8;
    json_value *items = realloc(v->items, ncap * sizeof *items);
    if (!items) { fail(p, "out of memory"); return 0; }
    v->items = items;
    if (with_keys) {
        char **keys = realloc(v->keys, ncap * sizeof *keys);
        if (!keys) { fail(p, "out of memory"); return 0; }
        v->keys = keys;
        size_t *lens = realloc(v->key_lens, ncap * sizeof *lens);
        if (!lens) { fail(p, "out of memory"); return 0; }
        v->key_lens = lens;
    }
    *cap = ncap;
    return 1;
}

static int parse_container(parser *p, json_value *v, int depth, int is_object) {
    char close = is_object ? '}' : ']';
    v->type = is_object ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    size_t cap = 0;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) { p->pos++; return 1; }
    for (;;) {
        if (!grow(p, v, &cap, is_object)) return 0;
        json_value *item = &v->items[v->count];
        memset(item, 0, sizeof *item);
        skip_ws(p);
        if (is_object) {
            if (p->pos >= p->n || p->s[p->pos] != '"') { fail(p, "expected object key"); return 0; }
            if (!parse_string(p, &v->keys[v->count], &v->key_lens[v->count])) return 0;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') {
                free(v->keys[v->count]);
                fail(p, "expected ':'");
                return 0;
            }
            p->pos++;
        }
        v->count++; /* counted now so json_free releases a partial item */
        if (!parse_value(p, item, depth + 1)) return 0;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->n && p->s[p->pos] == close) { p->pos++; return 1; }
        fail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        return 0;
    }
}

static int parse_value(parser *p, json_value *v, int depth) {
    if (depth > JSON_MAX_DEPTH) { fail(p, "nesting deeper than %d", JSON_MAX_DEPTH); return 0; }
    skip_ws(p);
    if (p->pos >= p->n) { fail(p, "unexpected end of JSON"); return 0; }
    char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, v, depth, 1);
    case '[': return parse_container(p, v, depth, 0);
    case '"': v->type = JSON_STRING; return parse_string(p, &v->str, &v->len);
    case 't': if (match(p, "true")) { v->type = JSON_BOOL; v->boolean = 1; return 1; } break;
    case 'f': if (match(p, "false")) { v->type = JSON_BOOL; return 1; } break;
    case 'n': if (match(p, "null")) { v->type = JSON_NULL; return 1; } break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    }
    fail(p, "unexpected character '%c'", (c >= 32 && c < 127) ? c : '?');
    return 0;
}

static void free_children(json_value *v) {
    for (size_t i = 0; i < v->count; i++) {
        free_children(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->str);
}

void json_free(json_value *v) {
    if (!v) return;
    free_children(v);
    free(v);
}

json_value *json_parse(const char *text, size_t len, char *err, size_t err_size) {
    parser p = {text, len, 0, err, err_size, 0};
    json_value *root = calloc(1, sizeof *root);
    if (!root) {
        if (err && err_size) snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (parse_value(&p, root, 0)) {
        skip_ws(&p);
        if (p.pos != p.n) fail(&p, "trailing characters after JSON value");
    }
    if (p.failed) {
        json_free(root);
        return NULL;
    }
    return root;
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < obj->count; i++)
        if (obj->key_lens[i] == klen && memcmp(obj->keys[i], key, klen) == 0) return &obj->items[i];
    return NULL;
}
