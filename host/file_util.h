/* host/file_util.h — small file-system helpers shared by the host code. */
#ifndef HOST_FILE_UTIL_H
#define HOST_FILE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

/* fsyncs the directory holding path (so a rename in it is durable); best effort. */
void fsync_parent_dir(const char *path);
/* 1 when path exists (any type). */
int path_exists(const char *path);
/* Size of a regular file, or -1. */
int64_t file_size(const char *path);
/* Creates the missing directories above path (mkdir -p of its dirname). */
int make_parent_dirs(const char *path, hx_err *err);
/* The part after the last '/'. */
const char *path_basename(const char *path);
/* Reads a whole (small) file, NUL-terminated; malloc'd, NULL + message on failure. */
char *read_text_file(const char *path, size_t max_bytes, hx_err *err);
/* Writes data to path atomically: path.tmp, fsync, rename, fsync the directory. */
int write_file_atomic(const char *path, const void *data, size_t n, hx_err *err);
/* Checks before any work that the output `path` can be created: its directory exists (or, with
 * OUTPUT_PATH_MAKE_PARENTS, the nearest existing one, for writers that make the missing ones), is a directory and
 * is writable, and path itself is not a directory (or, with OUTPUT_PATH_DIR, is a directory or absent). what
 * names the option in the message ("--out"). 0, or -1 with the reason. */
#define OUTPUT_PATH_DIR 1
#define OUTPUT_PATH_MAKE_PARENTS 2
int check_output_path(const char *what, const char *path, int flags, hx_err *err);
/* Bytes available to this user on the filesystem holding path (or its directory when path does not exist yet),
 * and that filesystem's device in *dev; UINT64_MAX when unknown. */
uint64_t free_disk_bytes(const char *path, uint64_t *dev);
/* Physical memory of this machine in bytes (UINT64_MAX when unknown). */
uint64_t physical_memory_bytes(void);
/* "1.5 GiB" into buf. */
const char *format_bytes(uint64_t bytes, char *buf, size_t cap);

/* A 64-bit fingerprint of a file: FNV-1a over its size and its first 1 MiB
 * (for safetensors: the header with every name, shape and offset, and the
 * first weights). Cheap on multi-GiB checkpoints. */
int file_fingerprint(const char *path, uint64_t *fp, hx_err *err);

#endif
