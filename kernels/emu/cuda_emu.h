/*
 * kernels/emu/cuda_emu.h — the device side of the CUDA emulator, force-included
 * (g++ -include) into every .cu file of kernels/cuda when the backend is built for
 * the CPU (make CUDA_EMU=1). The .cu files compile unchanged: they launch with
 * FT_LAUNCH and declare shared memory with FT_SHARED / FT_DYNAMIC_SHARED
 * (kernels/cuda/common.cuh), and reach inline PTX only through
 * kernels/cuda/ptx.cuh, whose emulated twins are kernels/emu/ptx_emu.h.
 *
 * Execution model (kernels/emu/exec.cpp): every CUDA thread is a fiber with
 * its own guarded stack; the threads of a block run on one worker thread and
 * switch only at __syncthreads and warp collectives, in the order of the
 * schedule FT_EMU_SCHEDULE picks; blocks are spread over the workers. Warp
 * collectives run in lock step: each lane deposits its operands and the last
 * lane to arrive computes the result for the whole warp.
 *
 * Checks: the kernels are compiled with -fsanitize=thread, but no TSan
 * runtime is linked: its load/store hooks (__tsan_read4 ...) are implemented
 * by kernels/emu/check.cpp, which checks every access of kernel code against
 * shadow memory (bounds, uninitialised reads, shared- and global-memory races
 * between barriers).
 */
#ifndef FT_CUDA_EMU_H
#define FT_CUDA_EMU_H
#define FT_CUDA_EMU 1

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

/* Every CUDA header first: cuda_runtime.h uses gridDim / blockDim as
 * parameter names, which the index macros below would break. */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define __launch_bounds__(...)
/* For a host compiler __shared__ expands to nothing, which would silently make
 * a shared array thread-private: in emulated kernels it is a compile error. */
#ifndef FT_EMU_RUNTIME
#undef __shared__
#define __shared__ use_FT_SHARED_or_FT_DYNAMIC_SHARED_in_emulated_kernels
#endif

namespace emu {

struct WarpSlot;

/* What kernel code sees of the running CUDA thread (the first member of the
 * runtime's per-thread record). */
struct ThreadIndex {
    uint3 tid, bid;
    dim3 bdim, gdim;
    int linear; /* threadIdx linearised (x fastest) */
    int warp, lane;
    WarpSlot *slot;    /* this lane's operands in warp collectives */
    const void *block; /* the runtime's view of the running block */
};
/* The running CUDA thread of this worker, NULL outside kernel code (__thread:
 * no dynamic initialisation, so every access is a plain TLS load). */
extern __thread ThreadIndex *cur __attribute__((tls_model("initial-exec")));

/* A call site in kernel source (divergence and deadlock reports). */
struct Site {
    const char *file;
    int line;
};

void syncthreads(Site s);
void syncwarp(Site s, unsigned mask = 0xffffffffu);

/* ---- warp collectives (lock step) ---- */
enum Collective { COLL_SHFL = 1, COLL_BALLOT, COLL_LDMATRIX, COLL_MMA, COLL_SYNCWARP };
struct WarpSlot {
    uint64_t in;     /* shuffle / vote operand */
    int src;         /* shuffle source lane */
    const void *row; /* ldmatrix: this lane's row address */
    uint32_t a[4], b[2];
    float c[4];
    uint64_t out[4];
};
/* The calling lane's slot: fill it, call warp_collective, read out[]. When
 * every lane named in mask has arrived, the last one runs fn(slots, arg) for
 * the warp. */
static inline WarpSlot *my_slot() { return cur->slot; }
void warp_collective(Collective kind, unsigned mask, void (*fn)(WarpSlot *slots, unsigned mask, int arg), int arg,
                     Site s);

/* ---- shared memory of the running block ---- */
void *dynamic_shared(size_t align);
void *static_shared(const void *key, size_t bytes, size_t align);
/* A kernel-detected defect (the launch fails, the error is sticky). */
void kernel_fault(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- launches ---- */
struct LaunchArgs {
    const void *fn;
    const char *name;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    void (*body)(void *closure);       /* runs the kernel for the current thread */
    void (*destroy)(void *closure);
    void *closure;
    const void *const *ptr_args; /* pointer-typed arguments, checked against device memory */
    int n_ptr_args;
};
/* Enqueues (or captures) the launch; configuration errors are returned as by
 * a real launch (cudaGetLastError). */
void launch_kernel(const LaunchArgs &a);

template <class T> struct is_pointer_arg : std::false_type {};
template <class T> struct is_pointer_arg<T *> : std::true_type {};

template <class... P> struct Launcher {
    void (*kernel)(P...);
    const char *name;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;

    /* The closure keeps every argument by value, as a launch does: a graph
     * replays exactly what was captured. */
    struct Closure {
        void (*kernel)(P...);
        std::tuple<std::decay_t<P>...> args;
    };
    static void run(void *c) {
        Closure *cl = (Closure *)c;
        std::apply(cl->kernel, cl->args);
    }
    static void destroy(void *c) { delete (Closure *)c; }

    template <class... A> void operator()(A &&...a) const {
        static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
        Closure *cl = new Closure{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(a)...)};
        const void *ptrs[sizeof...(P) + 1];
        int n = 0;
        std::apply(
            [&](const auto &...x) {
                ((is_pointer_arg<std::decay_t<decltype(x)>>::value ? (void)(ptrs[n++] = pointer_of(x)) : (void)0), ...);
            },
            cl->args);
        LaunchArgs la = {(const void *)kernel, name, grid, block, smem, stream, run, destroy, cl, ptrs, n};
        launch_kernel(la);
    }
    template <class X> static const void *pointer_of(X *p) { return (const void *)p; }
    template <class X> static const void *pointer_of(const X &) { return nullptr; }
};

template <class... P>
Launcher<P...> launch(void (*k)(P...), const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t st) {
    return Launcher<P...>{k, name, grid, block, smem, st};
}

/* ---- shadow-checked accesses made by the emulator on behalf of a thread ---- */
void shared_read(const void *p, size_t n);             /* ldmatrix rows */
void cp_async(void *smem, const void *gmem, int bytes); /* cp.async.cg */
void cp_async_commit();
void cp_async_wait(int pending);

} /* namespace emu */

/* cuda_runtime.h declares these templates only for nvcc. */
template <class T> static inline cudaError_t cudaFuncSetAttribute(T *entry, cudaFuncAttribute attr, int value) {
    return ::cudaFuncSetAttribute((const void *)entry, attr, value);
}
template <class T> static inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, T *entry) {
    return ::cudaFuncGetAttributes(a, (const void *)entry);
}

/* The index variables: for kernel code only (the emulator's own files define
 * FT_EMU_RUNTIME, where names like warpSize are cudaDeviceProp fields). */
#ifndef FT_EMU_RUNTIME
#undef threadIdx
#undef blockIdx
#undef blockDim
#undef gridDim
#undef warpSize
#define threadIdx (::emu::cur->tid)
#define blockIdx (::emu::cur->bid)
#define blockDim (::emu::cur->bdim)
#define gridDim (::emu::cur->gdim)
#define warpSize 32
#endif

#define FT_EMU_SITE ::emu::Site{__builtin_FILE(), __builtin_LINE()}

/* The collectives take their call site (file:line) for reports. They are
 * macros: GCC evaluates __builtin_LINE() in a function template's default
 * argument where the template is defined, not where it is called. */
#define __syncthreads() ::emu::syncthreads(FT_EMU_SITE)
#define __syncwarp(...) ::emu::syncwarp(FT_EMU_SITE, ##__VA_ARGS__)
#define __shfl_sync(...) emu_shfl_sync(FT_EMU_SITE, __VA_ARGS__)
#define __shfl_xor_sync(...) emu_shfl_xor_sync(FT_EMU_SITE, __VA_ARGS__)
#define __shfl_down_sync(...) emu_shfl_down_sync(FT_EMU_SITE, __VA_ARGS__)
#define __shfl_up_sync(...) emu_shfl_up_sync(FT_EMU_SITE, __VA_ARGS__)
#define __ballot_sync(...) emu_ballot_sync(FT_EMU_SITE, __VA_ARGS__)
#define __any_sync(...) (emu_ballot_sync(FT_EMU_SITE, __VA_ARGS__) != 0)
#define __all_sync(mask, pred) (emu_ballot_sync(FT_EMU_SITE, (mask), (pred)) == (unsigned)(mask))

/* ---- warp shuffles and votes ---- */
static inline void emu_shfl_fn(::emu::WarpSlot *s, unsigned mask, int) {
    for (int l = 0; l < 32; l++)
        if (mask >> l & 1) {
            int src = s[l].src;
            /* reading a lane outside the mask gives an undefined value on a GPU */
            if (!(mask >> src & 1))
                ::emu::kernel_fault(cudaErrorLaunchFailure, "__shfl_sync: lane %d reads lane %d, which is not in mask 0x%08x", l,
                                    src, mask);
            s[l].out[0] = s[src].in;
        }
}
template <class T> static inline T emu_shfl(::emu::Site site, unsigned mask, T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    ::emu::WarpSlot *s = ::emu::my_slot();
    s->in = 0;
    memcpy(&s->in, &v, sizeof v);
    s->src = src;
    ::emu::warp_collective(::emu::COLL_SHFL, mask, emu_shfl_fn, 0, site);
    T r;
    memcpy(&r, &::emu::my_slot()->out[0], sizeof r);
    return r;
}
template <class T> static inline T emu_shfl_sync(::emu::Site site, unsigned mask, T v, int src, int width = 32) {
    int lane = ::emu::cur->lane;
    return emu_shfl(site, mask, v, (lane & ~(width - 1)) | (src & (width - 1)));
}
template <class T> static inline T emu_shfl_xor_sync(::emu::Site site, unsigned mask, T v, int lane_mask, int width = 32) {
    int lane = ::emu::cur->lane;
    return emu_shfl(site, mask, v, (lane & ~(width - 1)) | ((lane ^ lane_mask) & (width - 1)));
}
template <class T> static inline T emu_shfl_down_sync(::emu::Site site, unsigned mask, T v, unsigned d, int width = 32) {
    int lane = ::emu::cur->lane;
    int src = (lane & (width - 1)) + (int)d < width ? lane + (int)d : lane;
    return emu_shfl(site, mask, v, src);
}
template <class T> static inline T emu_shfl_up_sync(::emu::Site site, unsigned mask, T v, unsigned d, int width = 32) {
    int lane = ::emu::cur->lane;
    int src = (lane & (width - 1)) >= (int)d ? lane - (int)d : lane;
    return emu_shfl(site, mask, v, src);
}
static inline void emu_ballot_fn(::emu::WarpSlot *s, unsigned mask, int) {
    uint64_t bits = 0;
    for (int l = 0; l < 32; l++)
        if ((mask >> l & 1) && s[l].in) bits |= 1ull << l;
    for (int l = 0; l < 32; l++) s[l].out[0] = bits;
}
static inline unsigned emu_ballot_sync(::emu::Site site, unsigned mask, int pred) {
    ::emu::my_slot()->in = pred != 0;
    ::emu::warp_collective(::emu::COLL_BALLOT, mask, emu_ballot_fn, 0, site);
    return (unsigned)::emu::my_slot()->out[0];
}

/* ---- correctly rounded float intrinsics (the emulated .cu files are built
 * with -ffp-contract=off, so each is one IEEE operation) ---- */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline int __float_as_int(float f) {
    int u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float __int_as_float(int u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif /* FT_CUDA_EMU_H */
