/* host/fid_npz.c — see fid_npz.h. */
#include "fid_npz.h"

#include <stdlib.h>

#include "npz.h"

#define CHUNK_BYTES (64u << 20)

int fid_concat_read(const uint64_t *start, int n_parts, fid_part_reader read, void *user, uint64_t first, size_t n,
                    uint8_t *buf, size_t image_bytes, hx_err *err) {
    int i = 0;
    while (n > 0) {
        while (i + 1 < n_parts && start[i + 1] <= first) i++;
        if (first < start[i] || first >= start[i + 1])
            return hx_fail(err, "image %llu is outside the parts", (unsigned long long)first);
        uint64_t have = start[i + 1] - first;
        size_t take = have < n ? (size_t)have : n;
        if (read(user, i, first - start[i], take, buf, err) != 0) return -1;
        buf += take * image_bytes;
        first += take;
        n -= take;
    }
    return 0;
}

int fid_write_npz(const char *path, uint64_t n_images, int size, fid_image_source images, fid_label_source labels,
                  void *user, int npz_flags, hx_err *err) {
    size_t image_bytes = (size_t)size * size * 3;
    size_t chunk = CHUNK_BYTES / image_bytes;
    if (chunk < 1) chunk = 1;
    if (chunk > n_images) chunk = (size_t)n_images;
    size_t label_chunk = n_images < CHUNK_BYTES / 8 ? (size_t)n_images : CHUNK_BYTES / 8;
    size_t buf_bytes = chunk * image_bytes > label_chunk * 8 ? chunk * image_bytes : label_chunk * 8;
    uint8_t *buf = malloc(buf_bytes + 8);
    if (!buf) return hx_fail(err, "out of memory");
    npz_writer *w;
    if (npz_writer_open(&w, path, npz_flags, err) != 0) {
        free(buf);
        return -1;
    }
    int64_t shape[4] = {(int64_t)n_images, size, size, 3};
    int rc = npz_writer_begin(w, "arr_0", NPY_U8, 4, shape, err);
    for (uint64_t done = 0; rc == 0 && done < n_images;) {
        size_t n = n_images - done < chunk ? (size_t)(n_images - done) : chunk;
        rc = images(user, done, n, buf, err);
        if (rc == 0) rc = npz_writer_data(w, buf, n * image_bytes, err);
        done += n;
    }
    if (rc == 0) rc = npz_writer_end(w, err);
    if (rc == 0 && labels) {
        int64_t lshape[1] = {(int64_t)n_images};
        rc = npz_writer_begin(w, "labels", NPY_I64, 1, lshape, err);
        for (uint64_t done = 0; rc == 0 && done < n_images;) {
            size_t n = n_images - done < label_chunk ? (size_t)(n_images - done) : label_chunk;
            rc = labels(user, done, n, (int64_t *)(void *)buf, err);
            if (rc == 0) rc = npz_writer_data(w, buf, n * 8, err);
            done += n;
        }
        if (rc == 0) rc = npz_writer_end(w, err);
    }
    free(buf);
    if (rc != 0) {
        npz_writer_abort(w);
        return -1;
    }
    return npz_writer_close(w, err);
}
