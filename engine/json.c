/* engine/json.c — strict streaming JSON reader (see json.h). */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the grammar allows next. */
enum { S_VALUE, S_VALUE_OR_CLOSE, S_KEY, S_KEY_OR_CLOSE, S_COMMA_OR_CLOSE, S_DONE, S_FAILED };

static json_token fail(json_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_token fail(json_reader *r, const char *fmt, ...) {
    if (r->state == S_FAILED) return JSON_ERROR;
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->error, sizeof r->error, "%s at byte %zu", what, r->pos);
    r->state = S_FAILED;
    return JSON_ERROR;
}

void json_reader_init(json_reader *r, const char *text, size_t len, int max_depth) {
    memset(r, 0, sizeof *r);
    r->s = text;
    r->n = len;
    r->max_depth = max_depth < 1 ? 1 : max_depth > JSON_MAX_DEPTH ? JSON_MAX_DEPTH : max_depth;
    r->state = S_VALUE;
}

void json_reader_free(json_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

static void skip_ws(json_reader *r) {
    while (r->pos < r->n) {
        char c = r->s[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        r->pos++;
    }
}

static int hex4(json_reader *r, unsigned *out) {
    if (r->n - r->pos < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->s[r->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    r->pos += 4;
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

/* Decodes the string at r->pos (which is at '"') into r->buf. */
static int read_string(json_reader *r) {
    r->pos++; /* opening quote */
    size_t end = r->pos;
    while (end < r->n && r->s[end] != '"') end += (r->s[end] == '\\') ? 2 : 1;
    if (end >= r->n) { fail(r, "unterminated string"); return 0; }
    /* decoded size <= raw size (escapes shrink; \uXXXX is 6 raw bytes for <= 4) */
    size_t need = end - r->pos + 1;
    if (need > r->cap) {
        char *buf = realloc(r->buf, need);
        if (!buf) { fail(r, "out of memory"); return 0; }
        r->buf = buf;
        r->cap = need;
    }
    char *buf = r->buf;
    size_t k = 0;
    while (r->pos < end) {
        unsigned char c = (unsigned char)r->s[r->pos];
        if (c < 0x20) { fail(r, "control character in string"); return 0; }
        if (c != '\\') { buf[k++] = (char)c; r->pos++; continue; }
        r->pos++;
        char e = r->s[r->pos++];
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
            if (r->pos > end || !hex4(r, &cp) || r->pos > end) { fail(r, "bad \\u escape"); return 0; }
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (r->pos + 2 > end || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u') {
                    fail(r, "unpaired surrogate");
                    return 0;
                }
                r->pos += 2;
                if (!hex4(r, &lo) || r->pos > end || lo < 0xDC00 || lo > 0xDFFF) {
                    fail(r, "bad surrogate pair");
                    return 0;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                fail(r, "unpaired surrogate");
                return 0;
            }
            k += put_utf8(buf + k, cp);
            break;
        }
        default: fail(r, "bad escape"); return 0;
        }
    }
    r->pos = end + 1;
    buf[k] = 0;
    r->str = buf;
    r->len = k;
    return 1;
}

static int is_digit(const json_reader *r) { return r->pos < r->n && r->s[r->pos] >= '0' && r->s[r->pos] <= '9'; }

static int read_number(json_reader *r) {
    size_t start = r->pos;
    int negative = 0, integral = 1;
    if (r->s[r->pos] == '-') { negative = 1; r->pos++; }
    if (!is_digit(r)) { fail(r, "bad number"); return 0; }
    if (r->s[r->pos] == '0' && r->pos + 1 < r->n && r->s[r->pos + 1] >= '0' && r->s[r->pos + 1] <= '9') {
        fail(r, "leading zero in number");
        return 0;
    }
    uint64_t u = 0;
    int overflow = 0;
    for (; is_digit(r); r->pos++) {
        unsigned d = (unsigned)(r->s[r->pos] - '0');
        if (u > (UINT64_MAX - d) / 10) overflow = 1;
        else u = u * 10 + d;
    }
    if (r->pos < r->n && r->s[r->pos] == '.') {
        integral = 0;
        r->pos++;
        if (!is_digit(r)) { fail(r, "bad fraction"); return 0; }
        while (is_digit(r)) r->pos++;
    }
    if (r->pos < r->n && (r->s[r->pos] == 'e' || r->s[r->pos] == 'E')) {
        integral = 0;
        r->pos++;
        if (r->pos < r->n && (r->s[r->pos] == '+' || r->s[r->pos] == '-')) r->pos++;
        if (!is_digit(r)) { fail(r, "bad exponent"); return 0; }
        while (is_digit(r)) r->pos++;
    }
    char tmp[64];
    size_t len = r->pos - start;
    if (len >= sizeof tmp) len = sizeof tmp - 1;
    memcpy(tmp, r->s + start, len);
    tmp[len] = 0;
    r->number = strtod(tmp, NULL);
    r->is_uint = integral && !negative && !overflow;
    r->uint = r->is_uint ? u : 0;
    return 1;
}

static int match(json_reader *r, const char *word) {
    size_t len = strlen(word);
    if (r->n - r->pos < len || memcmp(r->s + r->pos, word, len) != 0) return 0;
    r->pos += len;
    return 1;
}

/* After a complete value: the enclosing container continues, or the text ends. */
static json_token value_done(json_reader *r, json_token t) {
    r->state = r->depth > 0 ? S_COMMA_OR_CLOSE : S_DONE;
    return t;
}

static json_token open_container(json_reader *r, int is_object) {
    if (r->depth >= r->max_depth) return fail(r, "nesting deeper than %d", r->max_depth);
    r->stack[r->depth++] = (unsigned char)is_object;
    r->pos++;
    r->state = is_object ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
    return is_object ? JSON_OBJECT_BEGIN : JSON_ARRAY_BEGIN;
}

static json_token close_container(json_reader *r) {
    int is_object = r->stack[--r->depth];
    r->pos++;
    return value_done(r, is_object ? JSON_OBJECT_END : JSON_ARRAY_END);
}

static json_token read_value(json_reader *r) {
    if (r->pos >= r->n) return fail(r, "unexpected end of JSON");
    char c = r->s[r->pos];
    switch (c) {
    case '{': return open_container(r, 1);
    case '[': return open_container(r, 0);
    case '"': return read_string(r) ? value_done(r, JSON_STRING) : JSON_ERROR;
    case 't': if (match(r, "true")) return value_done(r, JSON_TRUE); break;
    case 'f': if (match(r, "false")) return value_done(r, JSON_FALSE); break;
    case 'n': if (match(r, "null")) return value_done(r, JSON_NULL); break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return read_number(r) ? value_done(r, JSON_NUMBER) : JSON_ERROR;
    }
    return fail(r, "unexpected character '%c'", (c >= 32 && c < 127) ? c : '?');
}

static json_token read_key(json_reader *r) {
    if (r->pos >= r->n || r->s[r->pos] != '"') return fail(r, "expected object key");
    if (!read_string(r)) return JSON_ERROR;
    skip_ws(r);
    if (r->pos >= r->n || r->s[r->pos] != ':') return fail(r, "expected ':'");
    r->pos++;
    r->state = S_VALUE;
    return JSON_KEY;
}

json_token json_next(json_reader *r) {
    skip_ws(r);
    json_token t;
    switch (r->state) {
    case S_FAILED: return JSON_ERROR;
    case S_DONE:
        if (r->pos != r->n) return fail(r, "trailing characters after JSON value");
        return JSON_END;
    case S_COMMA_OR_CLOSE: {
        int is_object = r->stack[r->depth - 1];
        char close = is_object ? '}' : ']';
        if (r->pos < r->n && r->s[r->pos] == close) {
            t = close_container(r);
            break;
        }
        if (r->pos >= r->n || r->s[r->pos] != ',')
            return fail(r, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        r->pos++;
        skip_ws(r);
        t = is_object ? read_key(r) : read_value(r);
        break;
    }
    case S_KEY_OR_CLOSE:
        t = r->pos < r->n && r->s[r->pos] == '}' ? close_container(r) : read_key(r);
        break;
    case S_KEY: t = read_key(r); break;
    case S_VALUE_OR_CLOSE:
        t = r->pos < r->n && r->s[r->pos] == ']' ? close_container(r) : read_value(r);
        break;
    default: t = read_value(r); break;
    }
    return t;
}
