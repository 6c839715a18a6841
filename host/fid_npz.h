/*
 * host/fid_npz.h — writes the sample archive of sample-fid and merge-npz:
 *   arr_0   uint8 [N, S, S, 3]  NHWC RGB (what the ADM evaluator reads)
 *   labels  int64 [N]           class of each image (optional)
 * streamed through the npz writer, images fetched in chunks from a source,
 * so sample-fid and merge-npz produce byte-identical files for equal content.
 */
#ifndef HOST_FID_NPZ_H
#define HOST_FID_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

/* Fills buf with images [first, first + n) of the archive. */
typedef int (*fid_image_source)(void *user, uint64_t first, size_t n, uint8_t *buf, hx_err *err);
/* Fills out with the labels of images [first, first + n). */
typedef int (*fid_label_source)(void *user, uint64_t first, size_t n, int64_t *out, hx_err *err);

/* Fills buf with images [first, first + n) of part `part` (counted from the part's start). */
typedef int (*fid_part_reader)(void *user, int part, uint64_t first, size_t n, uint8_t *buf, hx_err *err);

/* Images [first, first + n) of parts laid end to end: part i holds images
 * [start[i], start[i + 1]) (start has n_parts + 1 entries). For sources
 * that join shards: merge-npz (archives) and multi-process sample-fid (spools). */
int fid_concat_read(const uint64_t *start, int n_parts, fid_part_reader read, void *user, uint64_t first, size_t n,
                    uint8_t *buf, size_t image_bytes, hx_err *err);

/* Both sources are called with user and asked for chunks of at most 64 MiB; labels may be NULL (no labels
 * member). Nothing of the archive is held in memory as a whole. */
int fid_write_npz(const char *path, uint64_t n_images, int size, fid_image_source images, fid_label_source labels,
                  void *user, int npz_flags, hx_err *err);

#endif
