/*
 * kernels/emu/memory.cpp — emulated device memory.
 *
 * One large region of address space is reserved (inaccessible) at start-up;
 * cudaMalloc carves each allocation from it with an inaccessible guard page on
 * both sides, ends the allocation as close to the next guard page as CUDA's
 * 256-byte alignment allows, and fills it with 0xFF bytes (a float or bf16 NaN)
 * so that a read of memory nobody wrote shows. Freed ranges become
 * inaccessible again and are never reused, so a use after free faults.
 *
 * Shadow maps at fixed offsets from the region (their pages are made
 * accessible together with the allocation's):
 *   init    one byte per device byte: never written / written / outside any
 *           allocation (the slack between an allocation and its guard page);
 *   writer  four bytes per device byte: 1 + the linear id of the thread that
 *           last wrote it during the current launch (race checks);
 *   stamp   one 64-bit launch serial per 4 KiB page, telling whether the page's
 *           writer entries belong to the current launch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <map>
#include <mutex>

#include "internal.h"

namespace emu {

uintptr_t g_dev_base, g_init_base, g_writer_base, g_stamp_base;
size_t g_dev_size;

static const size_t PAGE = 4096;
static const size_t RESERVE = (size_t)256 << 30; /* address space for all allocations of a process */

static std::mutex g_mu;
static std::map<uintptr_t, Allocation> g_allocs; /* by start; freed ones stay (use-after-free reports) */
static uintptr_t g_cursor;
static size_t g_in_use, g_capacity;
static uint64_t g_next_id = 1;
static std::map<uintptr_t, size_t> g_pinned;

static uintptr_t reserve(size_t bytes, int prot) {
    void *p = mmap(nullptr, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "[cuda-emu] cannot reserve %zu GiB of address space: %s\n", bytes >> 30, strerror(errno));
        return 0;
    }
    return (uintptr_t)p;
}

void memory_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_dev_base = reserve(RESERVE, PROT_NONE);
        g_init_base = reserve(RESERVE, PROT_NONE);
        g_writer_base = reserve(RESERVE * 4, PROT_NONE);
        g_stamp_base = reserve(RESERVE / PAGE * 8, PROT_READ | PROT_WRITE);
        g_dev_size = g_dev_base && g_init_base && g_writer_base && g_stamp_base ? RESERVE : 0;
        g_cursor = g_dev_base;
        g_capacity = (size_t)env_long("FT_EMU_DEVICE_MEMORY_GB", 80) << 30;
    });
}

bool in_device_region(const void *p) { return (uintptr_t)p - g_dev_base < g_dev_size; }

uint8_t *init_shadow(const void *p) { return (uint8_t *)(g_init_base + ((uintptr_t)p - g_dev_base)); }

static void protect(uintptr_t dev_lo, size_t bytes, int prot) {
    size_t off = dev_lo - g_dev_base;
    mprotect((void *)dev_lo, bytes, prot);
    mprotect((void *)(g_init_base + off), bytes, prot);
    mprotect((void *)(g_writer_base + off * 4), bytes * 4, prot);
    if (prot == PROT_NONE) {
        madvise((void *)dev_lo, bytes, MADV_DONTNEED);
        madvise((void *)(g_init_base + off), bytes, MADV_DONTNEED);
        madvise((void *)(g_writer_base + off * 4), bytes * 4, MADV_DONTNEED);
    }
}

void *device_alloc(size_t bytes) {
    memory_init();
    if (!g_dev_size) return nullptr;
    size_t pages = (bytes + PAGE - 1) / PAGE;
    if (!pages) pages = 1;
    size_t span = (pages + 2) * PAGE; /* guard, data, guard */
    std::lock_guard<std::mutex> lock(g_mu);
    if (bytes > g_capacity - g_in_use || g_cursor + span > g_dev_base + g_dev_size) return nullptr;
    uintptr_t lo = g_cursor + PAGE, hi = lo + pages * PAGE;
    g_cursor += span;
    uintptr_t start = (hi - bytes) & ~(uintptr_t)255;
    protect(lo, hi - lo, PROT_READ | PROT_WRITE);
    memset((void *)lo, 0xff, hi - lo);
    uint8_t *sh = init_shadow((void *)lo);
    memset(sh, INIT_OUTSIDE, hi - lo);
    memset(sh + (start - lo), INIT_NO, bytes);
    /* writer entries of these pages belong to no launch yet */
    uint64_t *stamp = (uint64_t *)g_stamp_base + (lo - g_dev_base) / PAGE;
    for (size_t i = 0; i < pages; i++) stamp[i] = 0;
    g_allocs[start] = Allocation{start, bytes, g_next_id++, true};
    g_in_use += bytes;
    return (void *)start;
}

int device_free(void *p) {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || !it->second.live) return -1;
    Allocation &a = it->second;
    a.live = false;
    g_in_use -= a.size;
    uintptr_t lo = a.start & ~(uintptr_t)(PAGE - 1), hi = (a.start + a.size + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
    if (hi == lo) hi = lo + PAGE;
    protect(lo, hi - lo, PROT_NONE);
    return 0;
}

bool device_lookup(const void *p, Allocation *out, bool *inside) {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_allocs.upper_bound((uintptr_t)p);
    if (it == g_allocs.begin()) return false;
    --it;
    *out = it->second;
    *inside = (uintptr_t)p < it->second.start + it->second.size;
    return true;
}

bool device_range_live(const void *p, size_t n) {
    Allocation a;
    bool inside;
    if (!in_device_region(p) || !device_lookup(p, &a, &inside)) return false;
    return a.live && inside && (uintptr_t)p - a.start + n <= a.size;
}

void device_describe(const void *p, char *buf, size_t size) {
    Allocation a;
    bool inside;
    if (!in_device_region(p)) {
        snprintf(buf, size, "%p is not device memory (a host pointer, or uninitialised)", p);
        return;
    }
    if (!device_lookup(p, &a, &inside)) {
        snprintf(buf, size, "%p is below every device allocation", p);
        return;
    }
    uintptr_t q = (uintptr_t)p;
    const char *state = a.live ? "" : "freed ";
    if (inside)
        snprintf(buf, size, "%p is byte %zu of %s%zu-byte allocation #%llu", p, (size_t)(q - a.start), state, a.size,
                 (unsigned long long)a.id);
    else
        snprintf(buf, size, "%p is %zu bytes past the end of %s%zu-byte allocation #%llu", p,
                 (size_t)(q - (a.start + a.size)), state, a.size, (unsigned long long)a.id);
    /* a pointer just below the next allocation reads better relative to it */
    std::lock_guard<std::mutex> lock(g_mu);
    auto next = g_allocs.upper_bound(q);
    if (!inside && next != g_allocs.end() && next->first - q < q - (a.start + a.size))
        snprintf(buf, size, "%p is %zu bytes before the start of %s%zu-byte allocation #%llu", p,
                 (size_t)(next->first - q), next->second.live ? "" : "freed ", next->second.size,
                 (unsigned long long)next->second.id);
}

size_t device_bytes_in_use() {
    std::lock_guard<std::mutex> lock(g_mu);
    return g_in_use;
}

size_t device_capacity() {
    memory_init();
    return g_capacity;
}

void mark_initialised(const void *p, size_t n) {
    if (n && in_device_region(p)) memset(init_shadow(p), INIT_YES, n);
}

size_t count_uninitialised(const void *p, size_t n, size_t *first) {
    const uint8_t *s = init_shadow(p);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != INIT_YES) {
            if (!count && first) *first = i;
            count++;
        }
    return count;
}

void pinned_add(void *p, size_t n) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_pinned[(uintptr_t)p] = n;
}

bool pinned_remove(void *p) {
    std::lock_guard<std::mutex> lock(g_mu);
    return g_pinned.erase((uintptr_t)p) > 0;
}

bool is_pinned(const void *p, size_t n) {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_pinned.upper_bound((uintptr_t)p);
    if (it == g_pinned.begin()) return false;
    --it;
    return (uintptr_t)p >= it->first && (uintptr_t)p + n <= it->first + it->second;
}

} /* namespace emu */
