/*
 * engine/safetensors.h — validating safetensors reader (mmap or memory).
 *
 * Checks, each failing with a message that names the file and the tensor:
 * file at least 8 bytes; header length <= min(100 MiB, file size - 8);
 * header starts with '{' and is well-formed JSON (a top-level object);
 * entries are objects with exactly dtype/shape/data_offsets; known dtype;
 * rank 1..4 with non-negative integer dims; element count x item size
 * (overflow-checked) == end - begin; begin <= end <= data length; no two
 * tensors overlap; no duplicate names; __metadata__ maps strings to strings.
 * The header is streamed (engine/json.h), twice, with no tree: memory is
 * proportional to the tensors and strings it describes, time to its size.
 */
#ifndef FT_SAFETENSORS_H
#define FT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define ST_MAX_DIMS 4
#define ST_MAX_HEADER (100u << 20)

typedef enum { ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64, ST_U8 } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    size_t nbytes;
    const uint8_t *data; /* unaligned in general: read with memcpy */
} st_tensor;

typedef struct {
    char *path;
    const uint8_t *base; /* whole file */
    size_t size;
    int mapped;          /* base came from mmap (unmapped on close) */
    st_tensor *tensors;  /* sorted by name */
    size_t n_tensors;
    char **meta_keys;    /* in file order */
    char **meta_values;
    size_t n_meta;
    char *strings;       /* one block holding every name, key and value */
} st_file;

ft_status st_open(st_file *f, const char *path, ft_err *err);
/* Parses a file image in memory (not copied: it must outlive f). */
ft_status st_open_memory(st_file *f, const void *data, size_t size, const char *name, ft_err *err);
void st_close(st_file *f);

const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);
const char *st_dtype_name(st_dtype dtype);
size_t st_dtype_size(st_dtype dtype);
/* Converts a float tensor (F32/F16/BF16) to float32; out holds numel floats. */
void st_to_f32(const st_tensor *t, float *out);
/* Scalar conversions, exact (F16 subnormals and specials included). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif
