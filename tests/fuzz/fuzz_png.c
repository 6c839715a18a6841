/* tests/fuzz/fuzz_png.c — PNG reading (libpng through host/png.c). */
#include "fuzz_util.h"

#include <stdlib.h>

#include "../../host/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_mem_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    ftpng_image img;
    hx_err err;
    if (ftpng_read(path, &img, &err) == 0) {
        if (img.w < 1 || img.h < 1 || (img.channels != 1 && img.channels != 3)) abort();
        ftpng_find_text(&img, "parameters");
        ftpng_free(&img);
    }
    close(fd);
    return 0;
}
