/*
 * kernels/emu/check.cpp — every load and store of emulated kernel code,
 * checked against shadow memory.
 *
 * The kernels are compiled with -fsanitize=thread, which makes the compiler
 * call __tsan_readN / __tsan_writeN before each memory access; no TSan
 * runtime is linked: the hooks are defined here. Outside kernel code (no
 * running emulated thread) they return at once.
 *
 * Shared memory (the running block's arena): per byte, the last writer and
 * the readers since, with the block's barrier generation and the warp's
 * collective generation at the time. Two accesses by different threads, at
 * least one a write, with no __syncthreads between them (and, within a warp,
 * no warp collective between them) are a race: read-after-write,
 * write-after-write, write-after-read. Reading a byte nobody wrote, or one a
 * cp.async has not landed yet, or one outside the block's arrays, is reported.
 *
 * Device memory: per byte, whether anything ever wrote it (uninitialised
 * reads are reported, as compute-sanitizer's initcheck does) and whether it
 * lies outside every allocation (slack before a guard page); per byte, the
 * thread of the current launch that last wrote it, so that a thread reading
 * or overwriting what another thread of the same launch wrote — a race
 * without a grid-wide synchronisation — is reported.
 *
 * FT_EMU_CHECKS=0 turns the shadow checks off (faults and the other runtime
 * checks stay).
 */
#include <string.h>

#include "internal.h"

namespace emu {

static bool g_checks = true;

void checks_configure() { g_checks = env_long("FT_EMU_CHECKS", 1) != 0; }
bool checks_enabled() { return g_checks; }

static inline bool ordered_after(const BlockView *b, uint16_t other, uint32_t bgen, uint32_t wgen, const Thread *t) {
    if (b->bgen > bgen) return true; /* a __syncthreads completed since */
    int w = other / 32;
    return w == t->idx.warp && b->wgen[w] > wgen; /* a collective of the same warp completed since */
}

static void describe_thread(char *buf, size_t n, uint16_t linear, const ThreadIndex &me) {
    uint3 d = me.bdim;
    snprintf(buf, n, "threadIdx (%u,%u,%u)", linear % d.x, linear / d.x % d.y, linear / (d.x * d.y));
}

void smem_check_read(Thread *t, const BlockView *b, const void *p, size_t n) {
    size_t off = (uintptr_t)p - (uintptr_t)b->smem;
    const uint16_t me = (uint16_t)t->idx.linear;
    const uint32_t wg = b->wgen[t->idx.warp];
    for (size_t i = 0; i < n; i++) {
        SmemCell &c = b->cells[off + i];
        if (c.state != INIT_YES) {
            if (c.state == INIT_OUTSIDE)
                kernel_defect(cudaErrorIllegalAddress, "shared-memory read at byte %zu: outside every shared array",
                              off + i);
            else if (c.state == SMEM_PENDING)
                kernel_defect(cudaErrorLaunchFailure,
                              "shared-memory read at byte %zu, which a cp.async of thread %u has not landed yet "
                              "(missing cp.async.wait_group, or a barrier after it)",
                              off + i, c.writer);
            else
                kernel_defect(cudaErrorLaunchFailure, "read of uninitialised shared memory at byte %zu", off + i);
            return;
        }
        if (c.writer != me && !ordered_after(b, c.writer, c.wbgen, c.wwgen, t)) {
            char w[64];
            describe_thread(w, sizeof w, c.writer, t->idx);
            kernel_defect(cudaErrorLaunchFailure,
                          "shared-memory race: read of byte %zu written by %s with no __syncthreads in between", off + i,
                          w);
            return;
        }
        if (c.reader == NO_THREAD || c.rbgen != b->bgen) {
            c.reader = me;
            c.rbgen = b->bgen;
            c.rwgen = wg;
            c.rflags = 0;
        } else if (c.reader != me) {
            c.rflags |= READ_MANY;
            if (c.reader / 32 != me / 32) c.rflags |= READ_WARPS;
            if (wg > c.rwgen) c.rwgen = wg;
        }
    }
}

void smem_check_write(Thread *t, const BlockView *b, const void *p, size_t n) {
    size_t off = (uintptr_t)p - (uintptr_t)b->smem;
    const uint16_t me = (uint16_t)t->idx.linear;
    for (size_t i = 0; i < n; i++) {
        SmemCell &c = b->cells[off + i];
        if (c.state == INIT_OUTSIDE) {
            kernel_defect(cudaErrorIllegalAddress, "shared-memory write at byte %zu: outside every shared array", off + i);
            return;
        }
        if (c.state == SMEM_PENDING && c.writer != me) {
            kernel_defect(cudaErrorLaunchFailure,
                          "shared-memory write at byte %zu, the destination of a cp.async of thread %u in flight",
                          off + i, c.writer);
            return;
        }
        if (c.state == INIT_YES && c.writer != me && !ordered_after(b, c.writer, c.wbgen, c.wwgen, t)) {
            char w[64];
            describe_thread(w, sizeof w, c.writer, t->idx);
            kernel_defect(cudaErrorLaunchFailure,
                          "shared-memory race: write of byte %zu also written by %s with no __syncthreads in between",
                          off + i, w);
            return;
        }
        if (c.reader != NO_THREAD && c.rbgen == b->bgen && (c.reader != me || (c.rflags & READ_MANY))) {
            bool same_warp = !(c.rflags & READ_WARPS) && c.reader / 32 == me / 32;
            if (!(same_warp && b->wgen[me / 32] > c.rwgen)) {
                char r[64];
                describe_thread(r, sizeof r, c.reader, t->idx);
                kernel_defect(cudaErrorLaunchFailure,
                              "shared-memory race: write of byte %zu read by %s%s with no __syncthreads in between",
                              off + i, r, (c.rflags & READ_MANY) ? " and others" : "");
                return;
            }
        }
        c.state = INIT_YES;
        c.writer = me;
        c.wbgen = b->bgen;
        c.wwgen = b->wgen[me / 32];
        c.reader = NO_THREAD;
        c.rflags = 0;
    }
}

void smem_mark_pending(const BlockView *b, const void *p, size_t n) {
    size_t off = (uintptr_t)p - (uintptr_t)b->smem;
    for (size_t i = 0; i < n; i++) b->cells[off + i].state = SMEM_PENDING;
}

void smem_land(Thread *t, const BlockView *b, const void *p, size_t n) {
    size_t off = (uintptr_t)p - (uintptr_t)b->smem;
    for (size_t i = 0; i < n; i++) {
        SmemCell &c = b->cells[off + i];
        c.state = INIT_YES;
        c.writer = (uint16_t)t->idx.linear;
        c.wbgen = b->bgen;
        c.wwgen = b->wgen[t->idx.warp];
        c.reader = NO_THREAD;
        c.rflags = 0;
    }
}

/* ---- device memory ---- */

static const uint64_t STAMP_BUSY = ~0ull;

/* The writer entries of the page holding device byte off, made current for
 * this launch (the first access of a launch clears them). */
static uint32_t *writer_page(size_t off, uint64_t serial) {
    uint64_t *stamp = (uint64_t *)g_stamp_base + (off >> 12);
    uint32_t *page = (uint32_t *)(g_writer_base + ((off >> 12) << 12) * 4);
    for (;;) {
        uint64_t v = __atomic_load_n(stamp, __ATOMIC_ACQUIRE);
        if (v == serial) return page;
        if (v == STAMP_BUSY) continue;
        if (__atomic_compare_exchange_n(stamp, &v, STAMP_BUSY, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            memset(page, 0, 4096 * 4);
            __atomic_store_n(stamp, serial, __ATOMIC_RELEASE);
            return page;
        }
    }
}

static void describe_writer(char *buf, size_t n, uint32_t gid, const ThreadIndex &me) {
    uint64_t g = gid - 1, nt = (uint64_t)me.bdim.x * me.bdim.y * me.bdim.z, blk = g / nt, th = g % nt;
    snprintf(buf, n, "blockIdx (%llu,%llu,%llu) threadIdx (%llu,%llu,%llu)",
             (unsigned long long)(blk % me.gdim.x), (unsigned long long)(blk / me.gdim.x % me.gdim.y),
             (unsigned long long)(blk / ((uint64_t)me.gdim.x * me.gdim.y)), (unsigned long long)(th % me.bdim.x),
             (unsigned long long)(th / me.bdim.x % me.bdim.y), (unsigned long long)(th / (me.bdim.x * me.bdim.y)));
}

static void global_defect(const void *p, size_t n, bool write, const uint8_t *s) {
    for (size_t i = 0; i < n; i++) {
        char d[256];
        if (s[i] == INIT_OUTSIDE) {
            device_describe((const char *)p + i, d, sizeof d);
            kernel_defect(cudaErrorIllegalAddress, "out-of-bounds %s of device memory: %s", write ? "write" : "read", d);
            return;
        }
        if (!write && s[i] == INIT_NO) {
            device_describe((const char *)p + i, d, sizeof d);
            kernel_defect(cudaErrorLaunchFailure, "read of uninitialised device memory (never written): %s", d);
            return;
        }
    }
}

static void global_access(Thread *t, const BlockView *b, const void *p, size_t n, bool write) {
    uint8_t *s = init_shadow(p); /* a freed or guard range faults here: on_fault reports it */
    for (size_t i = 0; i < n; i++)
        if (s[i] != INIT_YES && (!write || s[i] == INIT_OUTSIDE)) {
            global_defect(p, n, write, s);
            return;
        }
    if (write) memset(s, INIT_YES, n);
    size_t off = (uintptr_t)p - g_dev_base;
    uint32_t *page = nullptr;
    for (size_t i = 0; i < n; i++) {
        size_t o = off + i;
        if (!page || !(o & 4095)) page = writer_page(o, b->launch_serial);
        uint32_t &w = page[o & 4095];
        if (w != t->gid && w) {
            char d[128];
            describe_writer(d, sizeof d, w, t->idx);
            kernel_defect(cudaErrorLaunchFailure,
                          "device-memory race: %s of byte %p, which %s wrote in the same launch (threads of one "
                          "launch are not ordered)",
                          write ? "write" : "read", (const void *)((const char *)p + i), d);
            return;
        }
        if (write) w = t->gid;
    }
}

void global_check_read(Thread *t, const BlockView *b, const void *p, size_t n) {
    if (g_checks) global_access(t, b, p, n, false);
}

/* ---- the hooks ---- */

static inline void on_access(const void *p, size_t n, bool write) {
    ThreadIndex *c = cur;
    if (!c || !g_checks) return;
    Thread *t = (Thread *)c;
    const BlockView *b = (const BlockView *)c->block;
    uintptr_t a = (uintptr_t)p;
    size_t off = a - (uintptr_t)b->smem;
    if (off < b->arena_bytes) {
        if (off + n > b->smem_used) {
            kernel_defect(cudaErrorIllegalAddress,
                          "shared-memory %s of %zu bytes at byte %zu: beyond the block's %zu bytes of shared memory",
                          write ? "write" : "read", n, off, b->smem_used);
            return;
        }
        if (write) smem_check_write(t, b, p, n);
        else smem_check_read(t, b, p, n);
    } else if (a - g_dev_base < g_dev_size) {
        global_access(t, b, p, n, write);
    }
    /* other addresses: the thread's stack, the launch's argument closure */
}

} /* namespace emu */

using emu::on_access;

extern "C" {
void __tsan_init() {}
void __tsan_func_entry(void *) {}
void __tsan_func_exit() {}
void __tsan_read1(void *p) { on_access(p, 1, false); }
void __tsan_read2(void *p) { on_access(p, 2, false); }
void __tsan_read4(void *p) { on_access(p, 4, false); }
void __tsan_read8(void *p) { on_access(p, 8, false); }
void __tsan_read16(void *p) { on_access(p, 16, false); }
void __tsan_write1(void *p) { on_access(p, 1, true); }
void __tsan_write2(void *p) { on_access(p, 2, true); }
void __tsan_write4(void *p) { on_access(p, 4, true); }
void __tsan_write8(void *p) { on_access(p, 8, true); }
void __tsan_write16(void *p) { on_access(p, 16, true); }
void __tsan_unaligned_read2(void *p) { on_access(p, 2, false); }
void __tsan_unaligned_read4(void *p) { on_access(p, 4, false); }
void __tsan_unaligned_read8(void *p) { on_access(p, 8, false); }
void __tsan_unaligned_read16(void *p) { on_access(p, 16, false); }
void __tsan_unaligned_write2(void *p) { on_access(p, 2, true); }
void __tsan_unaligned_write4(void *p) { on_access(p, 4, true); }
void __tsan_unaligned_write8(void *p) { on_access(p, 8, true); }
void __tsan_unaligned_write16(void *p) { on_access(p, 16, true); }
void __tsan_read_range(void *p, unsigned long n) { on_access(p, n, false); }
void __tsan_write_range(void *p, unsigned long n) { on_access(p, n, true); }
void __tsan_vptr_update(void **, void *) {}
void __tsan_vptr_read(void **) {}
/* Atomics in instrumented host code (NVTX's one-time initialisation): done
 * for real, sequentially consistent. */
int __tsan_atomic32_compare_exchange_strong(volatile int *a, int *expected, int desired, int, int) {
    return __atomic_compare_exchange_n(a, expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
}
