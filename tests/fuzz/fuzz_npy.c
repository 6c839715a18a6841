/* tests/fuzz/fuzz_npy.c — .npy headers from a buffer (npy_parse_header),
 * from a stream (npy_read_header) and whole files (npy_load). */
#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

#include "../../host/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    npy_header h;
    hx_err err;
    /* an exact-size copy: a read past the end is caught by ASan */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (npy_parse_header(copy, size, &h, "fuzz.npy", &err) == 0 && h.header_bytes > size) abort();
    free(copy);
    char path[64];
    int fd = fuzz_mem_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        npy_read_header(f, &h, "fuzz.npy", &err);
        fclose(f);
    }
    npy_array a;
    if (npy_load(path, &a, &err) == 0) {
        if (a.h.header_bytes + a.h.data_bytes != size) abort();
        npy_free(&a);
    }
    close(fd);
    return 0;
}
