/*
 * host/npz.h — NumPy .npz archives as the ADM evaluator reads them: a zip
 * of STORED (uncompressed) .npy members, e.g. arr_0.npy (uint8 [N,H,W,3])
 * and labels.npy (int64 [N]).
 *
 * The writer streams: a member's .npy header is written from the declared
 * shape, then its data arrives in any number of pieces (CRC-32 computed on
 * the fly, patched into the local header when the member ends), so the
 * images never need to be in memory together. Zip64 records are used when
 * a member, an offset or the directory passes 4 GiB (or always, with
 * NPZ_FORCE_ZIP64). Output is deterministic: fixed timestamps (1980-01-01),
 * no extra attributes, so equal content gives equal bytes. The file is
 * written as PATH.partial and renamed to PATH by npz_writer_close.
 *
 * The reader parses the central directory (zip64 included) and serves
 * stored .npy members by name (without the .npy suffix).
 */
#ifndef HOST_NPZ_H
#define HOST_NPZ_H

#include <stdint.h>
#include <stdio.h>

#include "errmsg.h"
#include "npy.h"

#define NPZ_MAX_MEMBERS 16
#define NPZ_MAX_NAME 64

enum { NPZ_FORCE_ZIP64 = 1 };

typedef struct npz_writer npz_writer;

int npz_writer_open(npz_writer **w, const char *path, int flags, hx_err *err);
/* Starts member name + ".npy" with the given type and shape. */
int npz_writer_begin(npz_writer *w, const char *name, npy_dtype dtype, int ndim, const int64_t *shape, hx_err *err);
/* Appends data of the current member (at most what the shape declares). */
int npz_writer_data(npz_writer *w, const void *data, size_t bytes, hx_err *err);
/* Ends the current member; all declared bytes must have been written. */
int npz_writer_end(npz_writer *w, hx_err *err);
/* begin + data + end for an array in memory. */
int npz_writer_array(npz_writer *w, const char *name, npy_dtype dtype, int ndim, const int64_t *shape,
                     const void *data, hx_err *err);
/* Writes the central directory, fsyncs, renames PATH.partial to PATH and frees w. */
int npz_writer_close(npz_writer *w, hx_err *err);
/* Frees w and removes the partial file. */
void npz_writer_abort(npz_writer *w);

typedef struct {
    char name[NPZ_MAX_NAME]; /* without ".npy" */
    npy_header h;
    uint32_t crc;             /* from the central directory */
    uint64_t member_offset;   /* of the .npy header inside the zip */
    uint64_t data_offset;     /* of the array data inside the zip */
} npz_member;

typedef struct {
    FILE *f;
    char path[1024];
    int zip64;
    int n;
    npz_member m[NPZ_MAX_MEMBERS];
} npz_reader;

int npz_reader_open(npz_reader *r, const char *path, hx_err *err);
void npz_reader_close(npz_reader *r);
const npz_member *npz_reader_find(const npz_reader *r, const char *name);
/* Reads bytes [offset, offset + n) of a member's array data. */
int npz_reader_read(npz_reader *r, const npz_member *m, uint64_t offset, void *buf, size_t n, hx_err *err);
/* Loads a whole member array (malloc'd). */
int npz_reader_load(npz_reader *r, const char *name, npy_array *out, hx_err *err);
/* Recomputes the CRC-32 of a member (.npy header + data) and compares. */
int npz_reader_check_crc(npz_reader *r, const npz_member *m, hx_err *err);

#endif
