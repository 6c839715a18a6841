/* tests/fuzz/fuzz_npz.c — the .npz reader: central directory (zip64
 * included), members, CRC checks and member reads. */
#include "fuzz_util.h"

#include <stdlib.h>

#include "../../host/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_mem_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    npz_reader r;
    hx_err err;
    if (npz_reader_open(&r, path, &err) == 0) {
        for (int i = 0; i < r.n; i++) {
            const npz_member *m = &r.m[i];
            /* a member the reader accepted lies inside the file */
            if (m->h.data_bytes > size || m->data_offset > size - m->h.data_bytes) abort();
            npz_reader_check_crc(&r, m, &err);
            npy_array a;
            if (npz_reader_load(&r, m->name, &a, &err) == 0) npy_free(&a);
            uint8_t tail[16];
            if (m->h.data_bytes >= sizeof tail) npz_reader_read(&r, m, m->h.data_bytes - sizeof tail, tail, sizeof tail, &err);
        }
        npz_reader_close(&r);
    }
    close(fd);
    return 0;
}
