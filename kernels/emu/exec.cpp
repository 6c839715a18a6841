/*
 * kernels/emu/exec.cpp — running a kernel launch on the CPU.
 *
 * A pool of worker threads (FT_EMU_WORKERS, default: the CPU count) takes the
 * blocks of a launch in turn. A worker runs one block at a time: each CUDA
 * thread of it is a fiber with its own 256 KiB stack (guard page below), and
 * the worker switches between them only when a thread waits — at
 * __syncthreads, at a warp collective, or when it exits — choosing the next
 * runnable thread by FT_EMU_SCHEDULE:
 *   rr       round robin: the next thread after the one that stopped (default)
 *   ahead    always the lowest-numbered runnable thread (warp 0 runs ahead)
 *   reverse  always the highest-numbered one
 *   random   a random runnable one (FT_EMU_SEED)
 * A missing barrier gives different answers under different schedules, and
 * the race checks of check.cpp report it under any schedule.
 *
 * Defects found while a block runs (divergent barriers or collectives,
 * deadlocks, races, uninitialised reads, out-of-bounds and misaligned
 * accesses) are reported with the kernel, blockIdx and threadIdx, make the
 * launch fail and set the sticky error, as a fault does on a GPU. A memory
 * fault (guard page) of kernel code is caught by the SIGSEGV handler, which
 * abandons the block.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include "internal.h"

namespace emu {

__thread ThreadIndex *cur;

/* ---- fibers: a minimal x86-64 System V context switch ----
 * emu_ctx_switch(save, to) pushes the callee-saved registers, stores the
 * stack pointer in *save, loads `to` and pops the same registers there. A new
 * fiber's stack is prepared so that the first switch "returns" into
 * emu_ctx_start with its Thread* in rbx. */
#if !defined(__x86_64__)
#error "the CUDA emulator's context switch is written for x86-64"
#endif
extern "C" void emu_ctx_switch(void **save_sp, void *to_sp);
extern "C" void emu_ctx_start();
asm(R"(
    .text
    .globl emu_ctx_switch
    .type emu_ctx_switch, @function
emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_ctx_switch, .-emu_ctx_switch
    .globl emu_ctx_start
    .type emu_ctx_start, @function
emu_ctx_start:
    movq %rbx, %rdi
    andq $-16, %rsp
    call emu_fiber_main
    ud2
    .size emu_ctx_start, .-emu_ctx_start
)");

enum { T_RUNNABLE, T_BARRIER, T_WARP, T_DONE };
enum Schedule { ORDER_RR, ORDER_AHEAD, ORDER_REVERSE, ORDER_RANDOM };

static const int MAX_THREADS = 1024;
static const size_t STACK_BYTES = 256 << 10;
static const size_t PAGE = 4096;
static const size_t ARENA_BYTES = 512 << 10; /* shared memory arena per worker (+ red zones) */
static const size_t RED_ZONE = 256;          /* between the dynamic and each static array */

struct Warp {
    WarpSlot slot[32];
    unsigned arrived, mask, live;
    int kind;
    Site site;
    uint64_t count; /* collectives the first arriver had completed */
    void (*fn)(WarpSlot *, unsigned, int);
    int arg;
};

struct Worker {
    int index;
    char *stacks; /* MAX_THREADS x (guard page + STACK_BYTES) */
    char *arena;
    SmemCell *cells;
    Thread threads[MAX_THREADS];
    uint64_t coll_count[MAX_THREADS]; /* warp collectives each thread completed */
    Warp warps[MAX_THREADS / 32];
    uint32_t wgen[MAX_THREADS / 32];
    BlockView view;
    int nthreads, live, done, bar_arrived;
    Site bar_site;
    bool reported_exit, reported_divergence;
    struct StaticArray {
        const void *key;
        size_t offset, bytes;
    };
    std::vector<StaticArray> statics;
    size_t arena_used;
    uint64_t runnable[MAX_THREADS / 64];
    int rr_next;
    uint64_t rng;
    void *sched_sp;
    Thread *running;
    const KernelPayload *k;
    sigjmp_buf jmp;
    char *altstack;
};

static __thread Worker *tls_worker __attribute__((tls_model("initial-exec")));

/* ---- the pool ---- */

/* Never destroyed: the detached workers wait on its condition variable until
 * the process ends (destroying it at exit would wait for them forever). */
struct Pool {
    std::mutex mu;
    std::condition_variable work_cv, done_cv;
    std::vector<Worker *> workers;
    uint64_t generation;
    const KernelPayload *k;
    uint64_t nblocks;
    std::atomic<uint64_t> next;
    std::atomic<bool> failed;
    int busy;
    uint64_t serial;
    Schedule sched;
    uint64_t seed;
    bool stop_at_defect;
};
static Pool &P = *new Pool();

static std::mutex g_smem_mu;
static std::map<const void *, size_t> g_smem_limit;

static DeviceLimits g_limits = {1024, {1024, 1024, 64}, {0x7fffffffu, 65535u, 65535u}, 48 << 10, 232448, 132};
const DeviceLimits &limits() { return g_limits; }

void set_kernel_smem_limit(const void *fn, size_t bytes) {
    std::lock_guard<std::mutex> l(g_smem_mu);
    g_smem_limit[fn] = bytes;
}
size_t kernel_smem_limit(const void *fn) {
    std::lock_guard<std::mutex> l(g_smem_mu);
    auto it = g_smem_limit.find(fn);
    return it == g_smem_limit.end() ? 0 : it->second;
}

KernelPayload::~KernelPayload() {
    if (a.destroy) a.destroy(a.closure);
}


/* ---- defects ---- */

static const char *kind_name(int kind) {
    switch (kind) {
    case COLL_SHFL: return "__shfl_*_sync";
    case COLL_BALLOT: return "__ballot_sync";
    case COLL_LDMATRIX: return "ldmatrix";
    case COLL_MMA: return "mma.sync";
    case COLL_SYNCWARP: return "__syncwarp";
    }
    return "a warp collective";
}

static bool same_site(Site a, Site b) {
    return a.line == b.line && (a.file == b.file || (a.file && b.file && strcmp(a.file, b.file) == 0));
}

static const char *short_file(const char *f) {
    const char *s = f ? strstr(f, "kernels/") : nullptr;
    return s ? s : f ? f : "?";
}

static void vdefect(cudaError_t e, const char *fmt, va_list ap) {
    Worker *w = tls_worker;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (w && w->running && w->k) {
        const ThreadIndex &t = w->running->idx;
        report("%s in kernel %s, blockIdx (%u,%u,%u) threadIdx (%u,%u,%u): %s", cudaGetErrorName(e), w->k->a.name,
               t.bid.x, t.bid.y, t.bid.z, t.tid.x, t.tid.y, t.tid.z, msg);
    } else if (w && w->k) {
        report("%s in kernel %s: %s", cudaGetErrorName(e), w->k->a.name, msg);
    } else {
        report("%s: %s", cudaGetErrorName(e), msg);
    }
    P.failed.store(true);
    set_sticky(e);
}

void kernel_defect(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdefect(e, fmt, ap);
    va_end(ap);
}

void kernel_fault(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdefect(e, fmt, ap);
    va_end(ap);
}

/* ---- runnable set ---- */

static inline void set_runnable(Worker &w, int i) { w.runnable[i >> 6] |= 1ull << (i & 63); }
static inline void clear_runnable(Worker &w, int i) { w.runnable[i >> 6] &= ~(1ull << (i & 63)); }

static int next_set(const Worker &w, int from) { /* first runnable index >= from, or -1 */
    int words = (w.nthreads + 63) >> 6;
    for (int q = from >> 6; q < words; q++) {
        uint64_t m = w.runnable[q];
        if (q == from >> 6) m &= ~0ull << (from & 63);
        if (m) return q * 64 + __builtin_ctzll(m);
    }
    return -1;
}

static int pick(Worker &w) {
    int words = (w.nthreads + 63) >> 6;
    switch (P.sched) {
    case ORDER_AHEAD: return next_set(w, 0);
    case ORDER_REVERSE:
        for (int q = words - 1; q >= 0; q--)
            if (w.runnable[q]) return q * 64 + 63 - __builtin_clzll(w.runnable[q]);
        return -1;
    case ORDER_RANDOM: {
        w.rng ^= w.rng << 13, w.rng ^= w.rng >> 7, w.rng ^= w.rng << 17;
        int i = next_set(w, (int)(w.rng % (uint64_t)w.nthreads));
        return i >= 0 ? i : next_set(w, 0);
    }
    case ORDER_RR:
    default: {
        int i = next_set(w, w.rr_next < w.nthreads ? w.rr_next : 0);
        if (i < 0) i = next_set(w, 0);
        if (i >= 0) w.rr_next = i + 1;
        return i;
    }
    }
}

/* ---- thread switching ---- */

/* The thread t stops (it waits or has exited): switch straight to the next
 * runnable thread of the block, or back to run_block when there is none (all
 * done, a deadlock, or a defect ends the block). Returns when t runs again. */
static void switch_away(Worker &w, Thread &t) {
    int i = P.stop_at_defect && P.failed.load(std::memory_order_relaxed) ? -1 : pick(w);
    if (i < 0) {
        emu_ctx_switch(&t.sp, w.sched_sp);
        return;
    }
    Thread &n = w.threads[i];
    w.running = &n;
    cur = &n.idx;
    emu_ctx_switch(&t.sp, n.sp);
}

static void on_exit_thread(Worker &w, Thread &t);

extern "C" __attribute__((used)) void emu_fiber_main(Thread *t) {
    Worker &w = *tls_worker;
    w.k->a.body(w.k->a.closure);
    if (t->cp_landed < t->cp.size())
        kernel_defect(cudaErrorLaunchFailure,
                      "thread exited with %zu cp.async copies that no cp.async.wait_group retired (the data never "
                      "landed in shared memory)",
                      t->cp.size() - t->cp_landed);
    t->state = T_DONE;
    clear_runnable(w, t->idx.linear);
    on_exit_thread(w, *t);
    switch_away(w, *t);
    __builtin_unreachable();
}

static void prepare_fiber(Thread &t) {
    void **sp = (void **)t.stack_hi;
    *--sp = nullptr;              /* (emu_ctx_start realigns the stack for its call) */
    *--sp = (void *)emu_ctx_start; /* "return address" of the first switch */
    *--sp = nullptr;              /* rbp */
    *--sp = &t;                   /* rbx */
    for (int r = 0; r < 4; r++) *--sp = nullptr; /* r12..r15 */
    t.sp = sp;
}

/* ---- __syncthreads ---- */

static void release_barrier(Worker &w) {
    w.bar_arrived = 0;
    w.view.bgen++;
    for (int i = 0; i < w.nthreads; i++)
        if (w.threads[i].state == T_BARRIER) w.threads[i].state = T_RUNNABLE, set_runnable(w, i);
}

void syncthreads(Site s) {
    Worker &w = *tls_worker;
    Thread &t = *w.running;
    if (w.done > 0 && !w.reported_exit) {
        w.reported_exit = true;
        kernel_defect(cudaErrorLaunchFailure,
                      "__syncthreads at %s:%d is reached after %d thread(s) of the block exited (a barrier must be "
                      "reached by every thread of the block)",
                      short_file(s.file), s.line, w.done);
    }
    if (w.bar_arrived == 0) {
        w.bar_site = s;
    } else if (!same_site(s, w.bar_site) && !w.reported_divergence) {
        w.reported_divergence = true;
        kernel_defect(cudaErrorLaunchFailure,
                      "divergent __syncthreads: this thread waits at %s:%d while %d thread(s) wait at %s:%d",
                      short_file(s.file), s.line, w.bar_arrived, short_file(w.bar_site.file), w.bar_site.line);
    }
    if (++w.bar_arrived == w.live) {
        release_barrier(w);
        return;
    }
    t.state = T_BARRIER;
    t.wait_site = s;
    clear_runnable(w, t.idx.linear);
    switch_away(w, t);
}

/* ---- warp collectives ---- */

static void complete_collective(Worker &w, int warp) {
    Warp &W = w.warps[warp];
    W.fn(W.slot, W.mask, W.arg);
    unsigned m = W.mask;
    W.arrived = 0;
    w.wgen[warp]++;
    for (int l = 0; l < 32; l++)
        if (m >> l & 1) {
            int i = warp * 32 + l;
            w.coll_count[i]++;
            if (w.threads[i].state == T_WARP) w.threads[i].state = T_RUNNABLE, set_runnable(w, i);
        }
}

void warp_collective(Collective kind, unsigned mask, void (*fn)(WarpSlot *, unsigned, int), int arg, Site s) {
    Worker &w = *tls_worker;
    Thread &t = *w.running;
    const int warp = t.idx.warp, lane = t.idx.lane;
    Warp &W = w.warps[warp];
    const unsigned bit = 1u << lane;
    if (!(mask & bit))
        kernel_defect(cudaErrorLaunchFailure, "%s at %s:%d: the calling lane %d is not in its mask 0x%08x",
                      kind_name(kind), short_file(s.file), s.line, lane, mask);
    if (mask & ~W.live) {
        kernel_defect(cudaErrorLaunchFailure,
                      "%s at %s:%d: mask 0x%08x names lanes that have exited or do not exist (live lanes 0x%08x)",
                      kind_name(kind), short_file(s.file), s.line, mask, W.live);
        mask &= W.live;
    }
    mask |= bit;
    if (W.arrived == 0) {
        W.kind = kind, W.site = s, W.mask = mask, W.fn = fn, W.arg = arg;
        W.count = w.coll_count[t.idx.linear];
    } else if (W.kind != kind || !same_site(W.site, s) || W.mask != mask) {
        kernel_defect(cudaErrorLaunchFailure,
                      "divergent warp %d: lane %d is at %s (%s:%d, mask 0x%08x) while lanes 0x%08x wait at %s (%s:%d, "
                      "mask 0x%08x)",
                      warp, lane, kind_name(kind), short_file(s.file), s.line, mask, W.arrived, kind_name(W.kind),
                      short_file(W.site.file), W.site.line, W.mask);
        W.mask |= mask;
    } else if (W.mask == W.live && w.coll_count[t.idx.linear] != W.count) {
        /* the same site, but another dynamic instance: some lane skipped one */
        kernel_defect(cudaErrorLaunchFailure,
                      "divergent warp %d at %s (%s:%d): lane %d has completed %llu warp collectives, the waiting "
                      "lanes %llu (a collective inside a branch or a loop the lanes leave at different times)",
                      warp, kind_name(kind), short_file(s.file), s.line, lane,
                      (unsigned long long)w.coll_count[t.idx.linear], (unsigned long long)W.count);
    }
    W.arrived |= bit;
    if ((W.arrived & W.mask) == W.mask) {
        complete_collective(w, warp);
        return;
    }
    t.state = T_WARP;
    t.wait_site = s;
    t.wait_kind = kind;
    clear_runnable(w, t.idx.linear);
    switch_away(w, t);
}

static void syncwarp_fn(WarpSlot *, unsigned, int) {}
void syncwarp(Site s, unsigned mask) { warp_collective(COLL_SYNCWARP, mask, syncwarp_fn, 0, s); }

/* ---- shared memory ---- */

void *dynamic_shared(size_t align) {
    Worker &w = *tls_worker;
    (void)align; /* the arena is page-aligned */
    return w.arena;
}

static void reset_cells(Worker &w, size_t lo, size_t hi, uint8_t state) {
    SmemCell c;
    memset(&c, 0, sizeof c);
    c.writer = c.reader = NO_THREAD;
    c.state = state;
    for (size_t i = lo; i < hi; i++) w.cells[i] = c;
}

void *static_shared(const void *key, size_t bytes, size_t align) {
    Worker &w = *tls_worker;
    size_t static_total = bytes;
    for (auto &st : w.statics) {
        if (st.key == key) return w.arena + st.offset;
        static_total += st.bytes;
    }
    if (static_total > g_limits.smem_default) {
        kernel_defect(cudaErrorLaunchOutOfResources, "%zu bytes of static shared memory: more than the %zu allowed",
                      static_total, g_limits.smem_default);
        return w.arena;
    }
    if (static_total + w.k->a.smem > g_limits.smem_optin) {
        kernel_defect(cudaErrorLaunchOutOfResources,
                      "%zu bytes of static and %zu of dynamic shared memory: more than the device's %zu per block",
                      static_total, w.k->a.smem, g_limits.smem_optin);
        return w.arena;
    }
    if (align < 16) align = 16;
    size_t off = (w.arena_used + RED_ZONE + align - 1) / align * align;
    reset_cells(w, w.arena_used, off, INIT_OUTSIDE); /* red zone */
    reset_cells(w, off, off + bytes, INIT_NO);
    memset(w.arena + off, 0xff, bytes);
    w.statics.push_back(Worker::StaticArray{key, off, bytes});
    w.arena_used = off + bytes;
    w.view.smem_used = w.arena_used;
    return w.arena + off;
}

/* ---- cp.async ---- */

void cp_async(void *dst, const void *src, int bytes) {
    Worker &w = *tls_worker;
    Thread &t = *w.running;
    if (((uintptr_t)dst | (uintptr_t)src) & (uintptr_t)(bytes - 1)) {
        kernel_defect(cudaErrorMisalignedAddress, "cp.async of %d bytes from %p to %p: addresses must be %d-byte aligned",
                      bytes, src, dst, bytes);
        return;
    }
    if ((uintptr_t)dst - (uintptr_t)w.arena >= w.arena_used || (uintptr_t)dst - (uintptr_t)w.arena + bytes > w.arena_used) {
        kernel_defect(cudaErrorIllegalAddress, "cp.async destination %p is outside the block's %zu bytes of shared memory",
                      dst, w.arena_used);
        return;
    }
    if (!in_device_region(src)) {
        char d[256];
        device_describe(src, d, sizeof d);
        kernel_defect(cudaErrorIllegalAddress, "cp.async source: %s", d);
        return;
    }
    global_check_read(&t, &w.view, src, (size_t)bytes);
    Thread::CpCopy c;
    c.dst = dst;
    c.bytes = bytes;
    memcpy(c.data, src, (size_t)bytes); /* a bad source faults here, at the issuing thread */
    smem_check_write(&t, &w.view, dst, (size_t)bytes);
    smem_mark_pending(&w.view, dst, (size_t)bytes);
    memset(dst, 0xff, (size_t)bytes);
    t.cp.push_back(c);
}

void cp_async_commit() {
    Thread &t = *tls_worker->running;
    t.cp_groups.push_back(t.cp.size());
}

void cp_async_wait(int pending) {
    Worker &w = *tls_worker;
    Thread &t = *w.running;
    size_t groups = t.cp_groups.size();
    if ((size_t)pending >= groups) return;
    size_t upto = t.cp_groups[groups - 1 - (size_t)pending];
    for (; t.cp_landed < upto; t.cp_landed++) {
        Thread::CpCopy &c = t.cp[t.cp_landed];
        memcpy(c.dst, c.data, (size_t)c.bytes);
        smem_land(&t, &w.view, c.dst, (size_t)c.bytes);
    }
}

void shared_read(const void *p, size_t n) {
    Worker &w = *tls_worker;
    if ((uintptr_t)p - (uintptr_t)w.arena >= w.arena_used || (uintptr_t)p - (uintptr_t)w.arena + n > w.arena_used) {
        kernel_defect(cudaErrorIllegalAddress, "shared-memory read of %zu bytes at %p is outside the block's %zu bytes",
                      n, p, w.arena_used);
        return;
    }
    smem_check_read(w.running, &w.view, p, n);
}

/* ---- faults ---- */

static void on_fault(int sig, siginfo_t *si, void *ucv) {
    Worker *w = tls_worker;
    if (!w || !w->running) { /* not kernel code: let it crash as it would */
        signal(sig, SIG_DFL);
        return;
    }
    uintptr_t a = (uintptr_t)si->si_addr;
    char where[320];
    const char *op = "access";
#ifdef REG_ERR
    if (sig == SIGSEGV) op = (((ucontext_t *)ucv)->uc_mcontext.gregs[REG_ERR] & 2) ? "write" : "read";
#else
    (void)ucv;
#endif
    cudaError_t e = cudaErrorIllegalAddress;
    if (sig == SIGFPE) {
        snprintf(where, sizeof where, "arithmetic exception (integer division by zero?)");
        e = cudaErrorLaunchFailure;
    } else if (a - g_dev_base < g_dev_size) {
        device_describe((void *)a, where, sizeof where);
    } else if (a - g_init_base < g_dev_size) {
        device_describe((void *)(g_dev_base + (a - g_init_base)), where, sizeof where);
    } else if (a - g_writer_base < 4 * g_dev_size) {
        device_describe((void *)(g_dev_base + (a - g_writer_base) / 4), where, sizeof where);
    } else if (a - (uintptr_t)w->stacks < (size_t)MAX_THREADS * (STACK_BYTES + PAGE)) {
        snprintf(where, sizeof where, "stack overflow of the thread's %zu KiB emulator stack", STACK_BYTES >> 10);
    } else if (a - (uintptr_t)w->arena < ARENA_BYTES + PAGE) {
        snprintf(where, sizeof where, "%p is beyond the block's shared memory", (void *)a);
    } else {
        snprintf(where, sizeof where, "%p is not device memory (a host or wild pointer)", (void *)a);
    }
    kernel_defect(e, "illegal %s: %s", op, where);
    siglongjmp(w->jmp, 1);
}

static void install_fault_handlers() {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    sigaction(SIGFPE, &sa, nullptr);
}

/* ---- one block ---- */

static void deadlock_report(Worker &w) {
    char buf[900];
    size_t len = 0;
    buf[0] = 0;
    if (w.bar_arrived)
        len += snprintf(buf + len, sizeof buf - len, " %d thread(s) wait at __syncthreads (%s:%d);", w.bar_arrived,
                        short_file(w.bar_site.file), w.bar_site.line);
    for (int q = 0; q < (w.nthreads + 31) / 32 && len < sizeof buf - 1; q++) {
        Warp &W = w.warps[q];
        if (!W.arrived) continue;
        len += snprintf(buf + len, sizeof buf - len,
                        " warp %d: lanes 0x%08x wait at %s (%s:%d) for lanes 0x%08x, which %s;", q, W.arrived,
                        kind_name(W.kind), short_file(W.site.file), W.site.line, W.mask & ~W.arrived,
                        (W.mask & ~W.arrived & ~W.live) ? "exited" : "wait elsewhere");
    }
    kernel_defect(cudaErrorLaunchFailure, "deadlock: no thread can run:%s", buf);
}

static void on_exit_thread(Worker &w, Thread &t) {
    w.live--;
    w.done++;
    int warp = t.idx.warp;
    Warp &W = w.warps[warp];
    W.live &= ~(1u << t.idx.lane);
    if (W.arrived && (W.mask >> t.idx.lane & 1)) {
        kernel_defect(cudaErrorLaunchFailure, "lane %d exited while lanes 0x%08x wait for it at %s (%s:%d)",
                      t.idx.lane, W.arrived, kind_name(W.kind), short_file(W.site.file), W.site.line);
        W.mask &= ~(1u << t.idx.lane);
        if ((W.arrived & W.mask) == W.mask) complete_collective(w, warp);
    }
    if (w.bar_arrived) {
        if (!w.reported_exit) {
            w.reported_exit = true;
            kernel_defect(cudaErrorLaunchFailure, "thread exited while %d thread(s) wait at __syncthreads (%s:%d)",
                          w.bar_arrived, short_file(w.bar_site.file), w.bar_site.line);
        }
        if (w.bar_arrived == w.live) release_barrier(w);
    }
}

static void run_block(Worker &w, const KernelPayload &k, uint64_t b) {
    const LaunchArgs &a = k.a;
    const int nt = (int)(a.block.x * a.block.y * a.block.z);
    w.k = &k;
    w.nthreads = nt;
    w.live = nt;
    w.done = 0;
    w.bar_arrived = 0;
    w.reported_exit = w.reported_divergence = false;
    w.statics.clear();
    w.arena_used = a.smem;
    w.rr_next = 0;
    w.rng = P.seed * 0x9E3779B97F4A7C15ull + b + 1;
    w.view.smem_used = a.smem;
    w.view.bgen = 0;
    w.view.launch_serial = P.serial;
    w.view.kernel = a.name;
    memset(w.arena, 0xff, a.smem);
    reset_cells(w, 0, a.smem, INIT_NO);
    const int nwarps = (nt + 31) / 32;
    for (int q = 0; q < nwarps; q++) {
        int lanes = nt - q * 32 < 32 ? nt - q * 32 : 32;
        w.warps[q].arrived = 0;
        w.warps[q].live = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
        w.wgen[q] = 0;
    }
    memset(w.runnable, 0, sizeof w.runnable);
    const uint3 bid = make_uint3((unsigned)(b % a.grid.x), (unsigned)(b / a.grid.x % a.grid.y),
                                 (unsigned)(b / ((uint64_t)a.grid.x * a.grid.y)));
    for (int i = 0; i < nt; i++) {
        Thread &t = w.threads[i];
        t.idx.tid = make_uint3(i % a.block.x, i / a.block.x % a.block.y, i / (a.block.x * a.block.y));
        t.idx.bid = bid;
        t.idx.bdim = a.block;
        t.idx.gdim = a.grid;
        t.idx.linear = i;
        t.idx.warp = i / 32;
        t.idx.lane = i % 32;
        t.idx.slot = &w.warps[i / 32].slot[i % 32];
        t.idx.block = &w.view;
        t.state = T_RUNNABLE;
        t.gid = (uint32_t)(b * (uint64_t)nt + (uint64_t)i + 1);
        t.cp.clear();
        t.cp_groups.clear();
        t.cp_landed = 0;
        w.coll_count[i] = 0;
        prepare_fiber(t);
        set_runnable(w, i);
    }
    if (sigsetjmp(w.jmp, 1)) { /* a fault in kernel code: the block is abandoned */
        w.running = nullptr;
        cur = nullptr;
        return;
    }
    int first = pick(w);
    Thread &t0 = w.threads[first];
    w.running = &t0;
    cur = &t0.idx;
    emu_ctx_switch(&w.sched_sp, t0.sp); /* back when no thread can run */
    w.running = nullptr;
    cur = nullptr;
    if (w.done < nt && !(P.stop_at_defect && P.failed.load())) deadlock_report(w);
}

/* ---- workers ---- */

static char *map_guarded(size_t count, size_t bytes) {
    size_t span = count * (bytes + PAGE);
    char *p = (char *)mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    for (size_t i = 0; i < count; i++) mprotect(p + i * (bytes + PAGE), PAGE, PROT_NONE); /* guard below each */
    return p;
}

static void *worker_main(void *arg) {
    Worker *w = (Worker *)arg;
    tls_worker = w;
    stack_t ss;
    ss.ss_sp = w->altstack;
    ss.ss_size = 256 << 10;
    ss.ss_flags = 0;
    sigaltstack(&ss, nullptr);
    uint64_t seen = 0;
    for (;;) {
        const KernelPayload *k;
        {
            std::unique_lock<std::mutex> l(P.mu);
            P.work_cv.wait(l, [&] { return P.generation != seen; });
            seen = P.generation;
            k = P.k;
        }
        for (;;) {
            uint64_t b = P.next.fetch_add(1);
            if (b >= P.nblocks || (P.stop_at_defect && P.failed.load())) break;
            run_block(*w, *k, b);
        }
        std::lock_guard<std::mutex> l(P.mu);
        if (--P.busy == 0) P.done_cv.notify_all();
    }
    return nullptr;
}

static bool start_pool() {
    if (!P.workers.empty()) return true;
    const char *s = env_str("FT_EMU_SCHEDULE", "rr");
    P.sched = !strcmp(s, "ahead") ? ORDER_AHEAD : !strcmp(s, "reverse") ? ORDER_REVERSE
            : !strcmp(s, "random")                  ? ORDER_RANDOM
                                                    : ORDER_RR;
    if (strcmp(s, "rr") && strcmp(s, "ahead") && strcmp(s, "reverse") && strcmp(s, "random"))
        report("FT_EMU_SCHEDULE=%s is not one of rr, ahead, reverse, random: using rr", s);
    P.seed = (uint64_t)env_long("FT_EMU_SEED", 1);
    P.stop_at_defect = env_long("FT_EMU_STOP_AT_DEFECT", 1) != 0;
    long n = env_long("FT_EMU_WORKERS", sysconf(_SC_NPROCESSORS_ONLN));
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    install_fault_handlers();
    checks_configure();
    for (long i = 0; i < n; i++) {
        Worker *w = new Worker();
        w->index = (int)i;
        w->stacks = map_guarded(MAX_THREADS, STACK_BYTES);
        w->arena = map_guarded(1, ARENA_BYTES);
        if (w->arena) w->arena += PAGE; /* guard page below; the one above belongs to nobody */
        w->cells = (SmemCell *)malloc(ARENA_BYTES * sizeof(SmemCell));
        w->altstack = (char *)malloc(256 << 10);
        if (!w->stacks || !w->arena || !w->cells || !w->altstack) {
            report("cannot create emulator worker %ld (out of memory)", i);
            return false;
        }
        for (int t = 0; t < MAX_THREADS; t++) {
            w->threads[t].stack_lo = w->stacks + t * (STACK_BYTES + PAGE) + PAGE;
            w->threads[t].stack_hi = w->threads[t].stack_lo + STACK_BYTES;
        }
        w->view.smem = w->arena;
        w->view.arena_bytes = ARENA_BYTES;
        w->view.cells = w->cells;
        w->view.wgen = w->wgen;
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, worker_main, w) != 0) {
            report("cannot start emulator worker %ld", i);
            return false;
        }
        pthread_attr_destroy(&attr);
        P.workers.push_back(w);
    }
    return true;
}

bool execute_kernel(const KernelPayload &k) {
    const LaunchArgs &a = k.a;
    /* every pointer argument must point into a live device allocation */
    for (int i = 0; i < a.n_ptr_args; i++) {
        const void *p = a.ptr_args[i];
        if (!p) continue;
        Allocation al;
        bool inside;
        bool ok = in_device_region(p) && device_lookup(p, &al, &inside) && al.live &&
                  (uintptr_t)p <= al.start + al.size;
        if (!ok) {
            char d[256];
            device_describe(p, d, sizeof d);
            report("cudaErrorIllegalAddress in kernel %s: pointer argument %d: %s", a.name, i + 1, d);
            set_sticky(cudaErrorIllegalAddress);
            return false;
        }
    }
    std::unique_lock<std::mutex> l(P.mu);
    if (!start_pool()) {
        set_sticky(cudaErrorLaunchFailure);
        return false;
    }
    static uint64_t serial = 1;
    P.serial = ++serial;
    P.k = &k;
    P.nblocks = (uint64_t)a.grid.x * a.grid.y * a.grid.z;
    P.next.store(0);
    P.failed.store(false);
    P.busy = (int)P.workers.size();
    P.generation++;
    P.work_cv.notify_all();
    P.done_cv.wait(l, [] { return P.busy == 0; });
    return !P.failed.load();
}

} /* namespace emu */
