/*
 * kernels/emu/runtime.cpp — the cudart subset the backend uses, on the CPU.
 *
 * Work is enqueued, never run at once: each stream keeps a queue, and work
 * runs only when something waits for it — cudaStreamSynchronize, an event,
 * a blocking copy, cudaDeviceSynchronize — and then only what that wait needs
 * (other streams' work stays pending unless an event wait makes it a
 * prerequisite). So a missing synchronisation (a host read before the stream
 * is synchronised, a stream consuming another stream's output without an
 * event) reads stale data here, as it may on a GPU. Copies from pageable host
 * memory read the source when enqueued, as CUDA stages them.
 *
 * Stream capture records the same work into a graph instead (each launch
 * keeps its arguments by value; forks and joins across streams through
 * events); a graph replays its nodes in a dependency order that runs the
 * most recently added ready node first. During a capture, the capturing
 * thread's unsafe calls (cudaMalloc, cudaFree, synchronous copies,
 * synchronisation) fail with cudaErrorStreamCaptureUnsupported and
 * invalidate the capture, as on a GPU; the first launch of a kernel, or the
 * first use of a cuBLASLt algorithm, inside a capture is refused too
 * (FT_EMU_STRICT_LAZY_LOADING=0 allows it): on a GPU that is where lazy
 * module loading would happen.
 *
 * A kernel fault makes the error sticky: every later call returns it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cxxabi.h>
#include <dlfcn.h>

#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "internal.h"

namespace emu {

/* ---- reports, sticky error, environment ---- */

static std::mutex g_report_mu;
static int g_reports;
static std::atomic<int> g_sticky{cudaSuccess};

long env_long(const char *name, long dflt) {
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    char *end;
    long v = strtol(s, &end, 10);
    return *end ? dflt : v;
}

const char *env_str(const char *name, const char *dflt) {
    const char *s = getenv(name);
    return s && *s ? s : dflt;
}

void report(const char *fmt, ...) {
    std::lock_guard<std::mutex> l(g_report_mu);
    static long limit = env_long("FT_EMU_MAX_REPORTS", 20);
    if (g_reports++ >= limit) {
        if (g_reports == limit + 1) fprintf(stderr, "[cuda-emu] (further reports suppressed: FT_EMU_MAX_REPORTS)\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[cuda-emu] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void set_sticky(cudaError_t e) {
    int expected = cudaSuccess;
    g_sticky.compare_exchange_strong(expected, (int)e);
}
cudaError_t sticky() { return (cudaError_t)g_sticky.load(); }

/* ---- API entry: one lock; host callbacks may not call the API ---- */

std::mutex g_api;
static thread_local bool tls_in_callback;
static thread_local cudaError_t tls_last = cudaSuccess;

cudaError_t note_error(cudaError_t e) {
    if (e != cudaSuccess) tls_last = e;
    return e;
}

#define API_BEGIN()                                                      \
    if (tls_in_callback) return note_error(cudaErrorNotPermitted);      \
    std::lock_guard<std::mutex> api_lock_(g_api);                        \
    if (sticky() != cudaSuccess) return sticky()

/* ---- work, streams, events, graphs ---- */

struct Op {
    virtual ~Op() {}
    virtual void run() = 0;
    virtual bool capturable(const char **why) const {
        (void)why;
        return true;
    }
};

struct Item {
    std::shared_ptr<Op> op;
    std::vector<std::shared_ptr<Item>> deps;
    struct Stream *stream;
    bool done = false;
};

struct Node {
    std::shared_ptr<Op> op;
    std::vector<int> deps;
};

struct GraphImpl {
    std::vector<Node> nodes;
};

struct ExecImpl {
    std::vector<Node> nodes;
    std::vector<int> order;
};

struct Capture {
    struct Stream *origin;
    cudaStreamCaptureMode mode;
    std::thread::id thread;
    GraphImpl graph;
    bool invalid = false;
    std::vector<struct Stream *> members;
};

struct Stream {
    std::deque<std::shared_ptr<Item>> q;
    std::shared_ptr<Item> last;
    bool blocking = true;
    bool legacy = false;
    Capture *cap = nullptr;
    std::vector<int> tail; /* capture: the nodes the next node depends on */
};

struct RecordOp : Op {
    double t_ms = 0;
    bool done = false;
    void run() override {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t_ms = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
        done = true;
    }
};

struct EventImpl {
    unsigned flags = 0;
    std::shared_ptr<Item> last;         /* its latest record (eager) */
    std::shared_ptr<RecordOp> record;
    Capture *cap = nullptr;             /* recorded during this capture */
    std::vector<int> cap_nodes;
};

static Stream g_legacy;
static std::set<Stream *> g_streams;
static std::set<EventImpl *> g_events;
static std::set<Capture *> g_captures;
static std::set<const void *> g_launched; /* kernels launched outside capture (lazy-loading rule) */

static Stream *stream_of(cudaStream_t s) {
    if (s == 0 || s == cudaStreamLegacy || s == cudaStreamPerThread) {
        g_legacy.legacy = true;
        return &g_legacy;
    }
    Stream *st = (Stream *)s;
    return g_streams.count(st) ? st : nullptr;
}

/* ---- execution ---- */

static void ensure_done(const std::shared_ptr<Item> &it);

static void run_front(Stream *s) {
    std::shared_ptr<Item> it = s->q.front();
    for (auto &d : it->deps) ensure_done(d);
    s->q.pop_front();
    if (sticky() == cudaSuccess) it->op->run();
    it->done = true;
}

static void ensure_done(const std::shared_ptr<Item> &it) {
    while (it && !it->done) run_front(it->stream);
}

static void drain(Stream *s) {
    while (!s->q.empty()) run_front(s);
}

static void drain_all() {
    drain(&g_legacy);
    for (Stream *s : g_streams) drain(s);
}

/* ---- capture rules ---- */

/* Invalidates the capture and returns why a call is refused during it. */
static cudaError_t invalidate(Capture *c, cudaError_t e, const char *what) {
    if (!c->invalid) report("%s during stream capture: the capture is invalidated (%s)", what, cudaGetErrorName(e));
    c->invalid = true;
    return e;
}

/* An unsafe call (allocation, synchronisation, blocking copy) from this
 * thread: refused while this thread captures (global or thread-local mode),
 * or while any thread captures in global mode. */
static cudaError_t capture_forbids(const char *what) {
    for (Capture *c : g_captures) {
        if (c->mode == cudaStreamCaptureModeRelaxed) continue;
        if (c->mode == cudaStreamCaptureModeGlobal || c->thread == std::this_thread::get_id())
            return invalidate(c, cudaErrorStreamCaptureUnsupported, what);
    }
    return cudaSuccess;
}

static cudaError_t enqueue(Stream *s, std::shared_ptr<Op> op, std::shared_ptr<Item> extra_dep = nullptr) {
    if (s->cap) {
        const char *why = nullptr;
        if (!op->capturable(&why)) return invalidate(s->cap, cudaErrorStreamCaptureUnsupported, why);
        Node n;
        n.op = std::move(op);
        n.deps = s->tail;
        s->cap->graph.nodes.push_back(std::move(n));
        s->tail.assign(1, (int)s->cap->graph.nodes.size() - 1);
        return cudaSuccess;
    }
    if (s->legacy) {
        for (Capture *c : g_captures)
            if (c->origin->blocking) return invalidate(c, cudaErrorStreamCaptureImplicit, "work on the legacy stream");
    }
    auto it = std::make_shared<Item>();
    it->op = std::move(op);
    it->stream = s;
    if (extra_dep) it->deps.push_back(extra_dep);
    /* the legacy stream and blocking streams wait for each other */
    if (s->legacy) {
        for (Stream *o : g_streams)
            if (o->blocking && o->last && !o->last->done) it->deps.push_back(o->last);
    } else if (s->blocking && g_legacy.last && !g_legacy.last->done) {
        it->deps.push_back(g_legacy.last);
    }
    s->q.push_back(it);
    s->last = it;
    return cudaSuccess;
}

/* ---- ops ---- */

struct KernelOp : Op {
    std::shared_ptr<KernelPayload> k;
    void run() override { execute_kernel(*k); }
};

struct FunctionOp : Op {
    std::function<void()> fn;
    bool can_capture = true;
    const char *why = nullptr;
    void run() override { fn(); }
    bool capturable(const char **w) const override {
        *w = why;
        return can_capture;
    }
};

struct HostFnOp : Op {
    cudaHostFn_t fn;
    void *user;
    void run() override {
        tls_in_callback = true;
        fn(user);
        tls_in_callback = false;
    }
};

struct NopOp : Op {
    void run() override {}
};

static void check_device_source(const void *src, size_t n, const char *what) {
    size_t first = 0, bad = count_uninitialised(src, n, &first);
    if (bad) {
        char d[256];
        device_describe((const char *)src + first, d, sizeof d);
        report("%s reads %zu uninitialised byte(s) of device memory (never written), the first: %s", what, bad, d);
        set_sticky(cudaErrorLaunchFailure);
    }
}

/* A copy of height rows of width bytes (pitches dpitch, spitch); a 1-d copy
 * is one row. */
struct CopyOp : Op {
    void *dst;
    const void *src;
    size_t width, height, dpitch, spitch;
    bool dst_dev, src_dev;
    std::vector<char> staged; /* pageable host source, read at enqueue (rows packed) */
    bool pageable_host;
    size_t extent(size_t pitch) const { return (height - 1) * pitch + width; }
    void run() override {
        if ((dst_dev && !device_range_live(dst, extent(dpitch))) || (src_dev && !device_range_live(src, extent(spitch)))) {
            report("cudaMemcpy: device memory of the copy was freed before the copy ran");
            set_sticky(cudaErrorIllegalAddress);
            return;
        }
        for (size_t r = 0; r < height; r++) {
            const char *from = staged.empty() ? (const char *)src + r * spitch : staged.data() + r * width;
            char *to = (char *)dst + r * dpitch;
            if (src_dev) check_device_source(from, width, "cudaMemcpy");
            memcpy(to, from, width);
            if (dst_dev) mark_initialised(to, width);
        }
    }
    bool capturable(const char **why) const override {
        *why = "a copy to or from pageable host memory";
        return !pageable_host;
    }
};

struct SetOp : Op {
    void *dst;
    int value;
    size_t n;
    void run() override {
        if (!device_range_live(dst, n)) {
            report("cudaMemset: device memory was freed before the memset ran");
            set_sticky(cudaErrorIllegalAddress);
            return;
        }
        memset(dst, value, n);
        mark_initialised(dst, n);
    }
};

struct GraphOp : Op {
    std::shared_ptr<ExecImpl> exec;
    void run() override {
        for (int i : exec->order) {
            if (sticky() != cudaSuccess) return;
            exec->nodes[(size_t)i].op->run();
        }
    }
};

/* ---- the pieces other files enqueue through ---- */

cudaError_t enqueue_function(cudaStream_t stream, std::function<void()> fn, const char *not_capturable_why) {
    Stream *s = stream_of(stream);
    if (!s) return cudaErrorInvalidResourceHandle;
    auto op = std::make_shared<FunctionOp>();
    op->fn = std::move(fn);
    op->can_capture = not_capturable_why == nullptr;
    op->why = not_capturable_why;
    return enqueue(s, op);
}

bool stream_capturing(cudaStream_t stream) {
    Stream *s = stream_of(stream);
    return s && s->cap;
}

cudaError_t refuse_in_capture(cudaStream_t stream, const char *what) {
    Stream *s = stream_of(stream);
    if (s && s->cap) return invalidate(s->cap, cudaErrorStreamCaptureUnsupported, what);
    return cudaSuccess;
}

/* The kernel's name with its template arguments (from the symbol table; the
 * launch macro's text, which says T for them, when there is none). */
static const char *kernel_name(const void *fn, const char *macro_text) {
    static std::map<const void *, std::string> names;
    auto it = names.find(fn);
    if (it != names.end()) return it->second.c_str();
    std::string name = macro_text;
    Dl_info info;
    if (dladdr(fn, &info) && info.dli_sname && info.dli_saddr == fn) {
        int status = 0;
        char *d = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
        if (d && status == 0) {
            name = d;
            size_t paren = name.find('(');
            if (paren != std::string::npos) name.resize(paren);
            if (name.compare(0, 5, "void ") == 0) name.erase(0, 5);
        }
        free(d);
    }
    return names.emplace(fn, name).first->second.c_str();
}

void launch_kernel(const LaunchArgs &a_in) {
    std::lock_guard<std::mutex> api_lock_(g_api);
    LaunchArgs a = a_in;
    a.name = kernel_name(a.fn, a.name);
    if (sticky() != cudaSuccess) return;
    const DeviceLimits &L = limits();
    size_t threads = (size_t)a.block.x * a.block.y * a.block.z;
    if (!a.grid.x || !a.grid.y || !a.grid.z || !threads || threads > (size_t)L.max_threads_per_block ||
        a.block.x > (unsigned)L.max_block[0] || a.block.y > (unsigned)L.max_block[1] ||
        a.block.z > (unsigned)L.max_block[2] || a.grid.x > L.max_grid[0] || a.grid.y > L.max_grid[1] ||
        a.grid.z > L.max_grid[2]) {
        report("launch of %s with grid (%u,%u,%u) block (%u,%u,%u): invalid configuration", a.name, a.grid.x,
               a.grid.y, a.grid.z, a.block.x, a.block.y, a.block.z);
        a.destroy(a.closure);
        note_error(cudaErrorInvalidConfiguration);
        return;
    }
    size_t lim = kernel_smem_limit(a.fn);
    if (!lim) lim = L.smem_default;
    if (a.smem > lim) {
        report("launch of %s with %zu bytes of dynamic shared memory: above its limit of %zu (%s)", a.name, a.smem, lim,
               kernel_smem_limit(a.fn) ? "cudaFuncSetAttribute" : "48 KiB without cudaFuncAttributeMaxDynamicSharedMemorySize");
        a.destroy(a.closure);
        note_error(cudaErrorInvalidValue);
        return;
    }
    Stream *s = stream_of(a.stream);
    if (!s) {
        a.destroy(a.closure);
        note_error(cudaErrorInvalidResourceHandle);
        return;
    }
    auto k = std::make_shared<KernelPayload>();
    k->a = a;
    k->ptrs.assign(a.ptr_args, a.ptr_args + a.n_ptr_args);
    k->a.ptr_args = k->ptrs.data();
    if (s->cap) {
        if (!g_launched.count(a.fn) && env_long("FT_EMU_STRICT_LAZY_LOADING", 1)) {
            char what[300];
            snprintf(what, sizeof what,
                     "first launch of kernel %s (lazy module loading would happen inside the capture; run the work "
                     "once eagerly before capturing it)",
                     a.name);
            note_error(invalidate(s->cap, cudaErrorStreamCaptureUnsupported, what));
            return;
        }
    } else {
        g_launched.insert(a.fn);
    }
    auto op = std::make_shared<KernelOp>();
    op->k = k;
    note_error(enqueue(s, op));
}

} /* namespace emu */

using namespace emu;

/* ---- the C API ---- */

extern "C" {

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define E(x) \
    case x: return #x;
        E(cudaSuccess) E(cudaErrorInvalidValue) E(cudaErrorMemoryAllocation) E(cudaErrorInitializationError)
        E(cudaErrorInvalidConfiguration) E(cudaErrorInvalidDevicePointer) E(cudaErrorInvalidMemcpyDirection)
        E(cudaErrorNoDevice) E(cudaErrorInvalidDevice) E(cudaErrorInvalidResourceHandle) E(cudaErrorIllegalState)
        E(cudaErrorNotReady) E(cudaErrorIllegalAddress) E(cudaErrorLaunchOutOfResources) E(cudaErrorLaunchTimeout)
        E(cudaErrorMisalignedAddress) E(cudaErrorLaunchFailure) E(cudaErrorNotPermitted) E(cudaErrorNotSupported)
        E(cudaErrorStreamCaptureUnsupported) E(cudaErrorStreamCaptureInvalidated) E(cudaErrorStreamCaptureMerge)
        E(cudaErrorStreamCaptureUnmatched) E(cudaErrorStreamCaptureUnjoined) E(cudaErrorStreamCaptureIsolation)
        E(cudaErrorStreamCaptureImplicit) E(cudaErrorStreamCaptureWrongThread) E(cudaErrorUnknown)
        E(cudaErrorHostMemoryAlreadyRegistered) E(cudaErrorInvalidDeviceFunction) E(cudaErrorInvalidPitchValue)
#undef E
    default: return "cudaErrorUnrecognized";
    }
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotPermitted: return "operation not permitted";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnjoined: return "capture needed a join to the origin stream";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
    default: return cudaGetErrorName(e);
    }
}

cudaError_t cudaGetLastError(void) {
    if (sticky() != cudaSuccess) return sticky();
    cudaError_t e = tls_last;
    tls_last = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return sticky() != cudaSuccess ? sticky() : tls_last; }

/* ---- device ---- */

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (tls_in_callback) return note_error(cudaErrorNotPermitted);
    return device == 0 ? (sticky() != cudaSuccess ? sticky() : cudaSuccess) : note_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *device) {
    *device = 0;
    return sticky() != cudaSuccess ? sticky() : cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
    if (device != 0) return note_error(cudaErrorInvalidDevice);
    const DeviceLimits &L = limits();
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator on the CPU (H100 SXM profile)");
    p->totalGlobalMem = device_capacity();
    p->sharedMemPerBlock = L.smem_default;
    p->sharedMemPerBlockOptin = L.smem_optin;
    p->sharedMemPerMultiprocessor = 233472;
    p->regsPerBlock = 65536;
    p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = L.max_threads_per_block;
    for (int i = 0; i < 3; i++) p->maxThreadsDim[i] = L.max_block[i], p->maxGridSize[i] = (int)L.max_grid[i];
    p->totalConstMem = 65536;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = L.sm_count;
    p->l2CacheSize = 50 << 20;
    p->maxThreadsPerMultiProcessor = 2048;
    p->maxBlocksPerMultiProcessor = 32;
    p->memoryBusWidth = 5120;
    p->concurrentKernels = 1;
    p->unifiedAddressing = 1;
    p->asyncEngineCount = 2;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    if (device != 0) return note_error(cudaErrorInvalidDevice);
    const DeviceLimits &L = limits();
    switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = L.sm_count; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)L.smem_optin; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)L.smem_default; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxThreadsPerBlock: *value = L.max_threads_per_block; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrL2CacheSize: *value = 50 << 20; break;
    case cudaDevAttrClockRate: *value = 0; break;       /* no clock: nothing is timed on a GPU here */
    case cudaDevAttrMemoryClockRate: *value = 0; break;
    case cudaDevAttrGlobalMemoryBusWidth: *value = 5120; break;
    default: report("cudaDeviceGetAttribute: attribute %d is not emulated", (int)attr); return note_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    API_BEGIN();
    if (cudaError_t e = capture_forbids("cudaDeviceSynchronize")) return note_error(e);
    drain_all();
    return sticky();
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    API_BEGIN();
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || (size_t)value > limits().smem_optin) {
            report("cudaFuncSetAttribute: %d bytes of dynamic shared memory exceed the device's %zu", value,
                   limits().smem_optin);
            return note_error(cudaErrorInvalidValue);
        }
        set_kernel_smem_limit(func, (size_t)value);
    }
    return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, const void *func) {
    API_BEGIN();
    memset(a, 0, sizeof *a);
    a->maxThreadsPerBlock = limits().max_threads_per_block;
    a->maxDynamicSharedSizeBytes = (int)kernel_smem_limit(func);
    (void)func;
    return cudaSuccess;
}

/* ---- memory ---- */

cudaError_t cudaMalloc(void **p, size_t bytes) {
    API_BEGIN();
    *p = nullptr;
    if (cudaError_t e = capture_forbids("cudaMalloc")) return note_error(e);
    if (!bytes) return cudaSuccess;
    *p = device_alloc(bytes);
    return *p ? cudaSuccess : note_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void *p) {
    API_BEGIN();
    if (!p) return cudaSuccess;
    if (cudaError_t e = capture_forbids("cudaFree")) return note_error(e);
    drain_all(); /* cudaFree synchronises the device */
    if (sticky() != cudaSuccess) return sticky();
    if (device_free(p) != 0) {
        char d[256];
        device_describe(p, d, sizeof d);
        report("cudaFree(%p): not the start of a live allocation: %s", p, d);
        return note_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaMallocPitch(void **p, size_t *pitch, size_t width, size_t height) {
    *pitch = (width + 511) / 512 * 512; /* rows start 512-byte aligned, as on the GPU */
    if (!*pitch) *pitch = 512;
    return cudaMalloc(p, *pitch * (height ? height : 1));
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total) {
    API_BEGIN();
    *total = device_capacity();
    *free_b = *total - device_bytes_in_use();
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) {
    API_BEGIN();
    if (cudaError_t e = capture_forbids("cudaMallocHost")) return note_error(e);
    *p = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096 + 4096);
    if (!*p) return note_error(cudaErrorMemoryAllocation);
    pinned_add(*p, bytes);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
    (void)flags;
    return cudaMallocHost(p, bytes);
}

cudaError_t cudaFreeHost(void *p) {
    API_BEGIN();
    if (!p) return cudaSuccess;
    if (cudaError_t e = capture_forbids("cudaFreeHost")) return note_error(e);
    drain_all();
    if (!pinned_remove(p)) return note_error(cudaErrorInvalidValue);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    API_BEGIN();
    memset(a, 0, sizeof *a);
    if (device_range_live(p, 1)) {
        a->type = cudaMemoryTypeDevice;
        a->devicePointer = (void *)p;
    } else if (is_pinned(p, 1)) {
        a->type = cudaMemoryTypeHost;
        a->hostPointer = (void *)p;
    } else {
        a->type = cudaMemoryTypeUnregistered;
    }
    return cudaSuccess;
}

/* Validates a copy of height rows of width bytes and builds its op; NULL with
 * *err set on a bad copy. */
static std::shared_ptr<CopyOp> make_copy(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                         size_t height, cudaMemcpyKind kind, cudaError_t *err) {
    bool dd = in_device_region(dst), sd = in_device_region(src);
    if (kind == cudaMemcpyDefault) {
        kind = dd ? (sd ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice) : (sd ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    }
    bool want_dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool want_sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (want_dd != dd || want_sd != sd) {
        report("cudaMemcpy kind %d does not match the pointers (destination %s, source %s)", (int)kind,
               dd ? "device" : "host", sd ? "device" : "host");
        *err = cudaErrorInvalidValue;
        return nullptr;
    }
    if (width > dpitch || width > spitch) {
        report("cudaMemcpy2D: width %zu is more than a pitch (%zu, %zu)", width, dpitch, spitch);
        *err = cudaErrorInvalidPitchValue;
        return nullptr;
    }
    auto op = std::make_shared<CopyOp>();
    op->dst = dst, op->src = src, op->width = width, op->height = height, op->dpitch = dpitch, op->spitch = spitch;
    op->dst_dev = dd, op->src_dev = sd;
    const void *ptrs[2] = {dst, src};
    const size_t ext[2] = {op->extent(dpitch), op->extent(spitch)};
    for (int i = 0; i < 2; i++)
        if ((i == 0 ? dd : sd) && !device_range_live(ptrs[i], ext[i])) {
            char d[256];
            device_describe(ptrs[i], d, sizeof d);
            report("cudaMemcpy of %zu x %zu bytes: the %s range (%zu bytes) is not inside one live allocation: %s",
                   height, width, i == 0 ? "destination" : "source", ext[i], d);
            *err = cudaErrorInvalidValue;
            return nullptr;
        }
    op->pageable_host = (!dd && !is_pinned(dst, ext[0])) || (!sd && !is_pinned(src, ext[1]));
    if (!sd && dd && !is_pinned(src, ext[1]))
        for (size_t r = 0; r < height; r++)
            op->staged.insert(op->staged.end(), (const char *)src + r * spitch, (const char *)src + r * spitch + width);
    return op;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t stream) {
    API_BEGIN();
    if (!n) return cudaSuccess;
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    cudaError_t err = cudaSuccess;
    auto op = make_copy(dst, n, src, n, n, 1, kind, &err);
    if (!op) return note_error(err);
    return note_error(enqueue(s, op));
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream) {
    API_BEGIN();
    if (!width || !height) return cudaSuccess;
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    cudaError_t err = cudaSuccess;
    auto op = make_copy(dst, dpitch, src, spitch, width, height, kind, &err);
    if (!op) return note_error(err);
    return note_error(enqueue(s, op));
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    API_BEGIN();
    if (!n) return cudaSuccess;
    if (cudaError_t e = capture_forbids("cudaMemcpy (synchronous)")) return note_error(e);
    cudaError_t err = cudaSuccess;
    auto op = make_copy(dst, n, src, n, n, 1, kind, &err);
    if (!op) return note_error(err);
    drain_all();
    if (sticky() == cudaSuccess) op->run();
    return sticky();
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t stream) {
    API_BEGIN();
    if (!n) return cudaSuccess;
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    if (!device_range_live(dst, n)) {
        char d[256];
        device_describe(dst, d, sizeof d);
        report("cudaMemsetAsync of %zu bytes: not inside one live allocation: %s", n, d);
        return note_error(cudaErrorInvalidValue);
    }
    auto op = std::make_shared<SetOp>();
    op->dst = dst, op->value = value, op->n = n;
    return note_error(enqueue(s, op));
}

cudaError_t cudaMemset(void *dst, int value, size_t n) {
    cudaError_t e = cudaMemsetAsync(dst, value, n, 0);
    return e != cudaSuccess ? e : cudaDeviceSynchronize();
}

/* ---- streams ---- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    API_BEGIN();
    Stream *st = new Stream();
    st->blocking = !(flags & cudaStreamNonBlocking);
    g_streams.insert(st);
    *s = (cudaStream_t)st;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int flags, int priority) {
    (void)priority;
    return cudaStreamCreateWithFlags(s, flags);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s || s->legacy) return note_error(cudaErrorInvalidResourceHandle);
    if (s->cap) return note_error(invalidate(s->cap, cudaErrorStreamCaptureUnsupported, "cudaStreamDestroy of a capturing stream"));
    drain(s); /* its pending work still runs, as on a GPU */
    g_streams.erase(s);
    delete s;
    return sticky();
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    if (s->cap) return note_error(invalidate(s->cap, cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize of the capturing stream"));
    if (cudaError_t e = capture_forbids("cudaStreamSynchronize")) return note_error(e);
    if (s->legacy) drain_all();
    else ensure_done(s->last);
    return sticky();
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    if (s->cap) return note_error(invalidate(s->cap, cudaErrorStreamCaptureUnsupported, "cudaStreamQuery of the capturing stream"));
    if (s->q.empty()) return cudaSuccess;
    run_front(s); /* progress, so that polling loops end */
    return s->q.empty() ? sticky() : cudaErrorNotReady;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *user) {
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    auto op = std::make_shared<HostFnOp>();
    op->fn = fn, op->user = user;
    return note_error(enqueue(s, op));
}

/* ---- events ---- */

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
    API_BEGIN();
    EventImpl *ev = new EventImpl();
    ev->flags = flags;
    g_events.insert(ev);
    *e = (cudaEvent_t)ev;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

static EventImpl *event_of(cudaEvent_t e) {
    EventImpl *ev = (EventImpl *)e;
    return g_events.count(ev) ? ev : nullptr;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    API_BEGIN();
    EventImpl *ev = event_of(e);
    if (!ev) return note_error(cudaErrorInvalidResourceHandle);
    g_events.erase(ev);
    delete ev; /* pending records hold their own state */
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
    API_BEGIN();
    EventImpl *ev = event_of(e);
    Stream *s = stream_of(stream);
    if (!ev || !s) return note_error(cudaErrorInvalidResourceHandle);
    if (s->cap) {
        ev->cap = s->cap;
        ev->cap_nodes = s->tail;
        ev->last.reset();
        return cudaSuccess;
    }
    auto op = std::make_shared<RecordOp>();
    cudaError_t r = enqueue(s, op);
    if (r != cudaSuccess) return note_error(r);
    ev->cap = nullptr;
    ev->record = op;
    ev->last = s->last;
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t e, unsigned int flags) {
    (void)flags;
    API_BEGIN();
    EventImpl *ev = event_of(e);
    Stream *s = stream_of(stream);
    if (!ev || !s) return note_error(cudaErrorInvalidResourceHandle);
    if (ev->cap) {
        Capture *c = ev->cap;
        if (!g_captures.count(c)) return cudaSuccess; /* that capture ended: nothing to wait for */
        if (s->cap && s->cap != c) return note_error(invalidate(s->cap, cudaErrorStreamCaptureMerge, "waiting on an event of another capture"));
        if (!s->cap) { /* fork: the stream joins the capture */
            s->cap = c;
            s->tail.clear();
            c->members.push_back(s);
        }
        for (int n : ev->cap_nodes)
            if (std::find(s->tail.begin(), s->tail.end(), n) == s->tail.end()) s->tail.push_back(n);
        return cudaSuccess;
    }
    if (s->cap) {
        if (!ev->last || ev->last->done) return cudaSuccess; /* already complete: no dependency */
        return note_error(invalidate(s->cap, cudaErrorStreamCaptureIsolation, "waiting on an event recorded outside the capture"));
    }
    return note_error(enqueue(s, std::make_shared<NopOp>(), ev->last));
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    API_BEGIN();
    EventImpl *ev = event_of(e);
    if (!ev) return note_error(cudaErrorInvalidResourceHandle);
    if (cudaError_t err = capture_forbids("cudaEventSynchronize")) return note_error(err);
    ensure_done(ev->last);
    return sticky();
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    API_BEGIN();
    EventImpl *ev = event_of(e);
    if (!ev) return note_error(cudaErrorInvalidResourceHandle);
    if (!ev->last || ev->last->done) return cudaSuccess;
    run_front(ev->last->stream); /* progress, so that polling loops end */
    return ev->last->done ? sticky() : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    API_BEGIN();
    EventImpl *ea = event_of(a), *eb = event_of(b);
    if (!ea || !eb || (ea->flags & cudaEventDisableTiming) || (eb->flags & cudaEventDisableTiming))
        return note_error(cudaErrorInvalidResourceHandle);
    if (!ea->record || !eb->record || !ea->record->done || !eb->record->done) return note_error(cudaErrorNotReady);
    *ms = (float)(eb->record->t_ms - ea->record->t_ms);
    return cudaSuccess;
}

/* ---- capture and graphs ---- */

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    if (s->legacy) {
        report("cudaStreamBeginCapture on the legacy default stream is not allowed");
        return note_error(cudaErrorStreamCaptureUnsupported);
    }
    if (s->cap) return note_error(cudaErrorIllegalState);
    Capture *c = new Capture();
    c->origin = s;
    c->mode = mode;
    c->thread = std::this_thread::get_id();
    c->members.push_back(s);
    g_captures.insert(c);
    s->cap = c;
    s->tail.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    *status = !s->cap ? cudaStreamCaptureStatusNone
            : s->cap->invalid ? cudaStreamCaptureStatusInvalidated
                              : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

static void ancestors(const GraphImpl &g, const std::vector<int> &from, std::vector<char> &seen) {
    std::vector<int> stack(from.begin(), from.end());
    while (!stack.empty()) {
        int n = stack.back();
        stack.pop_back();
        if (seen[(size_t)n]) continue;
        seen[(size_t)n] = 1;
        for (int d : g.nodes[(size_t)n].deps) stack.push_back(d);
    }
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    *graph = nullptr;
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s) return note_error(cudaErrorInvalidResourceHandle);
    Capture *c = s->cap;
    if (!c) return note_error(cudaErrorIllegalState);
    if (c->origin != s) return note_error(invalidate(c, cudaErrorStreamCaptureUnmatched, "cudaStreamEndCapture on a forked stream"));
    if (c->mode != cudaStreamCaptureModeRelaxed && c->thread != std::this_thread::get_id())
        return note_error(cudaErrorStreamCaptureWrongThread);
    /* every forked stream must have been joined back into the origin */
    std::vector<char> seen(c->graph.nodes.size(), 0);
    ancestors(c->graph, s->tail, seen);
    cudaError_t result = cudaSuccess;
    for (Stream *m : c->members)
        if (m != s)
            for (int n : m->tail)
                if (!seen[(size_t)n] && result == cudaSuccess)
                    result = invalidate(c, cudaErrorStreamCaptureUnjoined, "a stream forked into the capture was never joined back");
    for (Stream *m : c->members) {
        m->cap = nullptr;
        m->tail.clear();
    }
    for (EventImpl *ev : g_events)
        if (ev->cap == c) ev->cap = nullptr, ev->cap_nodes.clear();
    g_captures.erase(c);
    if (result == cudaSuccess && c->invalid) result = cudaErrorStreamCaptureInvalidated;
    if (result == cudaSuccess) *graph = (cudaGraph_t) new GraphImpl(std::move(c->graph));
    delete c;
    return note_error(result);
}

cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    API_BEGIN();
    delete (GraphImpl *)g;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    (void)flags;
    API_BEGIN();
    GraphImpl *g = (GraphImpl *)graph;
    if (!g) return note_error(cudaErrorInvalidValue);
    auto *x = new std::shared_ptr<ExecImpl>(std::make_shared<ExecImpl>());
    ExecImpl &e = **x;
    e.nodes = g->nodes;
    /* a dependency order; among ready nodes the most recently added runs
     * first, so a missing edge between independent branches shows */
    size_t n = e.nodes.size();
    std::vector<int> pending(n, 0);
    std::vector<std::vector<int>> users(n);
    for (size_t i = 0; i < n; i++)
        for (int d : e.nodes[i].deps) pending[i]++, users[(size_t)d].push_back((int)i);
    std::vector<int> ready;
    for (size_t i = 0; i < n; i++)
        if (!pending[i]) ready.push_back((int)i);
    while (!ready.empty()) {
        int i = ready.back();
        ready.pop_back();
        e.order.push_back(i);
        for (int u : users[(size_t)i])
            if (--pending[(size_t)u] == 0) ready.push_back(u);
    }
    *exec = (cudaGraphExec_t)x;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    API_BEGIN();
    Stream *s = stream_of(stream);
    if (!s || !exec) return note_error(cudaErrorInvalidResourceHandle);
    if (s->cap) return note_error(invalidate(s->cap, cudaErrorStreamCaptureUnsupported, "cudaGraphLaunch into a capture (child graphs are not emulated)"));
    auto op = std::make_shared<GraphOp>();
    op->exec = *(std::shared_ptr<ExecImpl> *)exec;
    return note_error(enqueue(s, op));
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    API_BEGIN();
    delete (std::shared_ptr<ExecImpl> *)exec; /* launches still pending keep it alive */
    return cudaSuccess;
}

} /* extern "C" */
