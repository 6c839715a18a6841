/*
 * tests/fuzz/fuzz_util.h — helpers shared by the libFuzzer targets: the
 * readers under test take paths, so an input is handed over as an anonymous
 * in-memory file (memfd) reached through /proc/self/fd/N.
 */
#ifndef FT_FUZZ_UTIL_H
#define FT_FUZZ_UTIL_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data to a memfd; its path goes to path. Returns the fd (close it when done) or -1. */
static inline int fuzz_mem_file(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("fuzz-input", 0);
    if (fd < 0) return -1;
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
