/*
 * engine/json.h — a small strict JSON parser (RFC 8259) for safetensors
 * headers. Builds a tree; numbers keep an exact uint64 form when they are
 * non-negative integers (offsets and shapes must not go through double).
 */
#ifndef FT_JSON_H
#define FT_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    int boolean;
    double number;
    int is_uint;    /* number is a non-negative integer that fits uint64 */
    uint64_t uint;  /* its exact value */
    char *str;      /* decoded string, NUL-terminated (may contain NUL: see len) */
    size_t len;
    struct json_value *items; /* array elements / object values */
    char **keys;              /* object keys (decoded) */
    size_t *key_lens;
    size_t count;
} json_value;

/* Parses text[0..len). Returns NULL with a message (including the byte
 * offset) in err on malformed input or when nesting exceeds 64 levels. */
json_value *json_parse(const char *text, size_t len, char *err, size_t err_size);
void json_free(json_value *v);
/* Object member by key, or NULL. */
const json_value *json_get(const json_value *obj, const char *key);

#endif
