/*
 * engine/json.h — a strict streaming JSON reader (RFC 8259) for safetensors
 * headers. It hands out one token at a time and builds no tree: its memory
 * is one buffer for the string being decoded (at most the longest string),
 * whatever the text holds, and nesting is bounded by the caller. Numbers
 * keep an exact uint64 form when they are non-negative integers (offsets and
 * shapes must not go through double).
 *
 *   json_reader r;
 *   json_reader_init(&r, text, len, 3);
 *   for (json_token t; (t = json_next(&r)) != JSON_END;)
 *       if (t == JSON_ERROR) { puts(r.error); break; }
 *   json_reader_free(&r);
 */
#ifndef FT_JSON_H
#define FT_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef enum {
    JSON_ERROR = 0,    /* malformed text (sticky); the reason is in r.error */
    JSON_END,          /* the value is complete and only whitespace follows */
    JSON_OBJECT_BEGIN,
    JSON_OBJECT_END,
    JSON_ARRAY_BEGIN,
    JSON_ARRAY_END,
    JSON_KEY,          /* an object member's name (r.str), its value comes next */
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL
} json_token;

typedef struct {
    /* the current token */
    const char *str;   /* JSON_KEY / JSON_STRING: decoded, NUL-terminated (may hold NULs: see len) */
    size_t len;
    double number;     /* JSON_NUMBER */
    int is_uint;       /* the number is a non-negative integer that fits uint64 */
    uint64_t uint;     /* its exact value */
    int depth;         /* containers open after this token */
    char error[192];   /* JSON_ERROR: what is wrong, with the byte offset */
    /* private */
    const char *s;
    size_t n, pos;
    int max_depth, state;
    unsigned char stack[JSON_MAX_DEPTH]; /* 1: object, 0: array */
    char *buf;
    size_t cap;
} json_reader;

/* Reads text[0..len); nesting deeper than max_depth (1..JSON_MAX_DEPTH) is an error. */
void json_reader_init(json_reader *r, const char *text, size_t len, int max_depth);
json_token json_next(json_reader *r);
void json_reader_free(json_reader *r);

#endif
