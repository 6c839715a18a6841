/* tests/fuzz/fuzz_json.c — the streaming JSON reader (engine/json.h): any
 * bytes, any nesting limit; the token stream must stay consistent. */
#include <stdlib.h>
#include <string.h>

#include "../../engine/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int max_depth = 1 + data[0] % JSON_MAX_DEPTH;
    json_reader r;
    json_reader_init(&r, (const char *)data + 1, size - 1, max_depth);
    json_token t;
    int depth = 0;
    while ((t = json_next(&r)) != JSON_END && t != JSON_ERROR) {
        if (t == JSON_OBJECT_BEGIN || t == JSON_ARRAY_BEGIN) depth++;
        if (t == JSON_OBJECT_END || t == JSON_ARRAY_END) depth--;
        if (depth != r.depth || depth < 0 || depth > max_depth) abort();
        if ((t == JSON_KEY || t == JSON_STRING) && r.str[r.len] != 0) abort();
    }
    if (t == JSON_END && depth != 0) abort();
    if (t == JSON_ERROR && !memchr(r.error, 0, sizeof r.error)) abort();
    json_reader_free(&r);
    return 0;
}
