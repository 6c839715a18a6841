/*
 * kernels/emu/internal.h — what the parts of the CUDA emulator share:
 *   memory.cpp   device memory: one reserved region, guard pages, shadow maps
 *   exec.cpp     fibers, worker pool, blocks, barriers, warp collectives, cp.async, faults
 *   check.cpp    the -fsanitize=thread access hooks: bounds, initialisation, races
 *   runtime.cpp  the cudart subset: errors, streams, events, lazy execution, graphs
 *   cublaslt.cpp the cuBLASLt subset
 * Everything here is host C++ compiled without instrumentation.
 */
#ifndef FT_EMU_INTERNAL_H
#define FT_EMU_INTERNAL_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#define FT_EMU_RUNTIME 1
#include "cuda_emu.h"

namespace emu {

/* ---- reports and the sticky error (runtime.cpp) ---- */

/* Prints one "[cuda-emu] ..." line on stderr (at most FT_EMU_MAX_REPORTS, 20 by default). */
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A fault of running device work: every later API call returns e (as after a
 * kernel fault on a GPU). Thread-safe. */
void set_sticky(cudaError_t e);
cudaError_t sticky();
/* A value from the environment (FT_EMU_*), with a default. */
long env_long(const char *name, long dflt);
const char *env_str(const char *name, const char *dflt);

/* The API lock (every cuda* and cublasLt* entry point holds it). */
extern std::mutex g_api;
/* Records e as the calling thread's last error (cudaGetLastError); returns e. */
cudaError_t note_error(cudaError_t e);
/* Enqueues fn on a stream (or records it into the stream's capture); a non-NULL
 * not_capturable_why makes the capture fail with that reason instead. */
cudaError_t enqueue_function(cudaStream_t stream, std::function<void()> fn, const char *not_capturable_why);
bool stream_capturing(cudaStream_t stream);
/* Invalidates the capture of stream (if any) because of `what`; returns the error. */
cudaError_t refuse_in_capture(cudaStream_t stream, const char *what);

/* ---- element formats of the emulated libraries (cuBLASLt, cuDNN) ---- */

enum ElemType { ELEM_F32, ELEM_BF16, ELEM_F16 };

/* Element i of an array of t, widened to float. */
static inline float elem_load(const void *p, size_t i, ElemType t) {
    if (t == ELEM_F32) {
        float f;
        memcpy(&f, (const char *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    if (t == ELEM_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    __half_raw r;
    r.x = h;
    return __half2float(__half(r));
}

/* Stores v as element i of t (one rounding, to nearest even). */
static inline void elem_store(void *p, size_t i, ElemType t, float v) {
    if (t == ELEM_F32) {
        memcpy((char *)p + 4 * i, &v, 4);
    } else if (t == ELEM_BF16) {
        __nv_bfloat16 b = __float2bfloat16_rn(v);
        memcpy((char *)p + 2 * i, &b, 2);
    } else {
        __half h = __float2half_rn(v);
        memcpy((char *)p + 2 * i, &h, 2);
    }
}

/* ---- device memory (memory.cpp) ---- */

struct Allocation {
    uintptr_t start;
    size_t size;
    uint64_t id;
    bool live;
};

/* Byte states in the init shadow. */
enum : uint8_t { INIT_NO = 0, INIT_YES = 1, INIT_OUTSIDE = 3 };

void memory_init();
/* NULL when the emulated device (FT_EMU_DEVICE_MEMORY_GB, 80 by default) is full. */
void *device_alloc(size_t bytes);
/* 0 on success; -1 when p is not the start of a live allocation. */
int device_free(void *p);
/* The allocation containing p (live or freed), or the nearest one before it. */
bool device_lookup(const void *p, Allocation *out, bool *inside);
/* Every byte of [p, p + n) belongs to one live allocation. */
bool device_range_live(const void *p, size_t n);
/* Describes where p is relative to device memory, for reports. */
void device_describe(const void *p, char *buf, size_t size);
size_t device_bytes_in_use();
size_t device_capacity();
bool in_device_region(const void *p);
/* The init shadow byte of a device address. */
uint8_t *init_shadow(const void *p);
/* Marks [p, p + n) written by the host, a copy, a memset or cuBLASLt. */
void mark_initialised(const void *p, size_t n);
/* Number of bytes of [p, p + n) never written (0 when fully initialised); the
 * offset of the first one in *first. */
size_t count_uninitialised(const void *p, size_t n, size_t *first);

extern uintptr_t g_dev_base;
extern size_t g_dev_size;
extern uintptr_t g_init_base;    /* init shadow: one byte per device byte */
extern uintptr_t g_writer_base;  /* last writer in the current launch: four bytes per device byte */
extern uintptr_t g_stamp_base;   /* launch serial per 4 KiB device page */

/* Pinned host memory (cudaMallocHost / cudaHostAlloc): copies to and from it
 * may be captured into graphs. */
void pinned_add(void *p, size_t n);
bool pinned_remove(void *p);
bool is_pinned(const void *p, size_t n);

/* ---- execution (exec.cpp) ---- */

struct KernelPayload {
    LaunchArgs a;                  /* ptr_args points into ptrs */
    std::vector<const void *> ptrs;
    ~KernelPayload();
};

/* Runs every block of a launch on the worker pool; returns false when the
 * kernel faulted (the sticky error is set and the fault reported). */
bool execute_kernel(const KernelPayload &k);
/* The per-launch limits of the emulated device (an H100 profile). */
struct DeviceLimits {
    int max_threads_per_block;
    int max_block[3];
    unsigned max_grid[3];
    size_t smem_default;  /* per block without the opt-in attribute */
    size_t smem_optin;    /* with it */
    int sm_count;
};
const DeviceLimits &limits();
/* cudaFuncSetAttribute(MaxDynamicSharedMemorySize) values; 0 when unset. */
void set_kernel_smem_limit(const void *fn, size_t bytes);
size_t kernel_smem_limit(const void *fn);

/* ---- the running thread, as the access hooks see it (exec.cpp) ---- */

struct SmemCell; /* check.cpp */

struct Thread {
    ThreadIndex idx; /* first member: emu::cur points here */
    void *sp;
    char *stack_lo, *stack_hi;
    int state;
    Site wait_site;
    int wait_kind;
    uint32_t gid; /* 1 + linear thread id within the launch (global-memory race shadow) */
    struct CpCopy {
        void *dst;
        unsigned char data[16];
        int bytes;
    };
    std::vector<CpCopy> cp;
    std::vector<size_t> cp_groups; /* end index of each committed group */
    size_t cp_landed;
};

struct BlockView {
    char *smem;           /* the block's shared memory arena */
    size_t arena_bytes;   /* its size (accesses beyond smem_used are out of bounds) */
    size_t smem_used;     /* bytes in use: dynamic + static arrays (+ red zones) */
    SmemCell *cells;      /* its shadow */
    uint32_t bgen;        /* completed __syncthreads of this block */
    const uint32_t *wgen; /* completed collectives, per warp */
    uint64_t launch_serial;
    const char *kernel;
};

/* The current worker's running thread and block (NULL outside kernel code):
 * defined below, after Thread and BlockView. */
/* Reports a defect found in the running kernel: prints the kernel, block and
 * thread, sets the sticky error and fails the launch (execution goes on, so
 * more reports can follow, up to the report limit). */
void kernel_defect(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline Thread *running_thread() { return (Thread *)cur; }
static inline const BlockView *running_block() { return cur ? (const BlockView *)cur->block : nullptr; }

/* ---- access checks (check.cpp) ---- */

struct SmemCell {
    uint32_t wbgen, wwgen; /* barrier and warp generations of the last write */
    uint32_t rbgen, rwgen; /* of the reads since (rwgen: the latest) */
    uint16_t writer, reader;
    uint8_t state;  /* INIT_NO, INIT_YES, or SMEM_PENDING (cp.async in flight) */
    uint8_t rflags; /* READ_MANY, READ_WARPS */
    uint16_t pad;
};
enum : uint8_t { SMEM_PENDING = 2 };
enum : uint8_t { READ_MANY = 1, READ_WARPS = 2 };
enum : uint16_t { NO_THREAD = 0xffff };

void checks_configure();
bool checks_enabled();
void smem_check_read(Thread *t, const BlockView *b, const void *p, size_t n);
void smem_check_write(Thread *t, const BlockView *b, const void *p, size_t n);
/* cp.async: the destination becomes pending, then lands as a write of t. */
void smem_mark_pending(const BlockView *b, const void *p, size_t n);
void smem_land(Thread *t, const BlockView *b, const void *p, size_t n);
void global_check_read(Thread *t, const BlockView *b, const void *p, size_t n);

} /* namespace emu */

#endif /* FT_EMU_INTERNAL_H */
