/*
 * host/npy.h — NumPy .npy files (format versions 1.0, 2.0 and 3.0, C order).
 *
 * Supported element types: float32 ('<f4'), int64 ('<i8') and uint8 ('|u1').
 * Reading is strict: the magic, the version, the header length, the header
 * dict (exactly the keys descr / fortran_order / shape, each once), the
 * dtype, the byte order, C order, the shape (non-negative, overflow-checked)
 * and the data length (no missing and no trailing bytes) are all checked,
 * and every failure names the file and what is wrong.
 */
#ifndef HOST_NPY_H
#define HOST_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "errmsg.h"

#define NPY_MAX_DIMS 8

typedef enum { NPY_F32 = 0, NPY_I64 = 1, NPY_U8 = 2 } npy_dtype;

typedef struct {
    npy_dtype dtype;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    uint64_t numel;
    uint64_t data_bytes;  /* numel * item size */
    size_t header_bytes;  /* magic + version + length + dict: where the data starts */
} npy_header;

typedef struct {
    npy_header h;
    void *data; /* malloc'd, h.data_bytes bytes (at least 1) */
} npy_array;

size_t npy_dtype_size(npy_dtype dtype);
const char *npy_dtype_name(npy_dtype dtype); /* "float32", "int64", "uint8" */

/* Formats a header (version 1.0, or 2.0 when the dict does not fit 64 KiB)
 * padded with spaces so the data starts at a multiple of 64 bytes. Returns
 * its length, or 0 when it does not fit cap or the shape is invalid. */
size_t npy_format_header(char *buf, size_t cap, npy_dtype dtype, int ndim, const int64_t *shape);

/* Parses the header at the start of buf (avail bytes available). name is
 * used in messages. Returns 0, or -1 with the reason. */
int npy_parse_header(const uint8_t *buf, size_t avail, npy_header *h, const char *name, hx_err *err);

/* Reads and parses the header at the current position of f. */
int npy_read_header(FILE *f, npy_header *h, const char *name, hx_err *err);

/* Loads a whole .npy file; the file size must be exactly header + data. */
int npy_load(const char *path, npy_array *out, hx_err *err);
void npy_free(npy_array *a);

/* Writes a whole .npy file. */
int npy_save(const char *path, npy_dtype dtype, int ndim, const int64_t *shape, const void *data, hx_err *err);

/* "[2, 4, 8, 8]" into buf. */
const char *npy_shape_string(const npy_header *h, char *buf, size_t cap);

#endif
