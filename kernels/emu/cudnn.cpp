/*
 * kernels/emu/cudnn.cpp — the cuDNN subset the backend uses (the legacy
 * convolution API of cuDNN 9), on the CPU.
 *
 * Descriptors hold what was set on them and are checked as cuDNN documents:
 * 4-d tensors and filters in NCHW or NHWC (the filter of an NHWC convolution
 * is KRSC), f32 / fp16 / bf16 data; 2-d convolutions with stride 1 or more,
 * dilation 1, compute type f32 (the "pseudo" configurations for 16-bit data);
 * x, w and y of one data type; y's dimensions those of
 * cudnnGetConvolution2dForwardOutputDim. Algorithms have deterministic
 * workspace sizes. cudnnConvolutionBiasActivationForward follows its
 * documented rules: identity activation only with IMPLICIT_PRECOMP_GEMM (else
 * CUDNN_STATUS_NOT_SUPPORTED), relu otherwise, a bias of y's type with
 * dimensions 1 x C x 1 x 1, z of y's dimensions (z may alias y).
 *
 * Each call checks every operand's extent against its allocation and the
 * workspace against the algorithm's size, then enqueues the work on the
 * handle's stream (or into its capture): 16-bit values widened to f32, the
 * convolution as im2col + one f32 GEMM (OpenBLAS), alpha / beta / z / bias /
 * activation, one rounding to y's type. The first use of a problem inside a
 * stream capture is refused like a first kernel launch (lazy loading).
 *
 * FT_EMU_CUDNN_NO_FUSED=1 makes cudnnConvolutionBiasActivationForward return
 * CUDNN_STATUS_NOT_SUPPORTED for everything, so the caller's unfused path
 * (cudnnConvolutionForward + cudnnAddTensor) runs.
 */
#ifdef FT_WITH_CUDNN /* the build found cudnn.h */
#include <cblas.h>
#include <cudnn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <set>
#include <vector>

#include "internal.h"

struct cudnnContext {
    uint32_t magic;
    cudaStream_t stream;
    std::set<uint64_t> used; /* problems run outside capture */
};
struct cudnnTensorStruct {
    uint32_t magic;
    bool set;
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int n, c, h, w;
};
struct cudnnFilterStruct {
    uint32_t magic;
    bool set;
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int k, c, h, w;
};
struct cudnnConvolutionStruct {
    uint32_t magic;
    bool set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};
struct cudnnActivationStruct {
    uint32_t magic;
    bool set;
    cudnnActivationMode_t mode;
    double coef;
};

namespace emu {

enum : uint32_t { DNN_HANDLE = 0x444e4e31, DNN_TENSOR = 0x444e4e32, DNN_FILTER = 0x444e4e33, DNN_CONV = 0x444e4e34,
                  DNN_ACT = 0x444e4e35 };

static size_t dnn_size(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT ? 4 : 2; }
static bool dnn_type_ok(cudnnDataType_t t) {
    return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_HALF || t == CUDNN_DATA_BFLOAT16;
}
static const char *dnn_type_name(cudnnDataType_t t) {
    return t == CUDNN_DATA_FLOAT ? "f32" : t == CUDNN_DATA_HALF ? "f16" : t == CUDNN_DATA_BFLOAT16 ? "bf16" : "other";
}

static ElemType dnn_elem(cudnnDataType_t t) {
    return t == CUDNN_DATA_FLOAT ? ELEM_F32 : t == CUDNN_DATA_BFLOAT16 ? ELEM_BF16 : ELEM_F16;
}
static float dnn_load(const void *p, size_t i, cudnnDataType_t t) { return elem_load(p, i, dnn_elem(t)); }
static void dnn_store(void *p, size_t i, cudnnDataType_t t, float v) { elem_store(p, i, dnn_elem(t), v); }

/* Linear index of (n, c, h, w) in a 4-d tensor of this format. */
static size_t idx4(cudnnTensorFormat_t f, int C, int H, int W, int n, int c, int h, int w) {
    return f == CUDNN_TENSOR_NHWC ? (((size_t)n * H + h) * W + w) * C + c : (((size_t)n * C + c) * H + h) * W + w;
}

static size_t tensor_elems(const cudnnTensorStruct *t) { return (size_t)t->n * t->c * t->h * t->w; }

static int out_dim(int in, int pad, int k, int dil, int stride) { return (in + 2 * pad - ((k - 1) * dil + 1)) / stride + 1; }

/* Validates a convolution problem; NULL when supported, else why not. */
static const char *conv_check(const cudnnTensorStruct *x, const cudnnFilterStruct *w, const cudnnConvolutionStruct *c,
                              const cudnnTensorStruct *y) {
    if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set) return "a descriptor is missing or was never set";
    if (x->type != w->type || x->type != y->type) return "x, w and y must have one data type";
    if (c->compute != CUDNN_DATA_FLOAT) return "the convolution's compute type must be CUDNN_DATA_FLOAT";
    if (x->format != w->format) return "the filter's format must be the input's (KRSC for NHWC)";
    if (x->c != w->c) return "the filter's input channels differ from x's";
    if (c->dil_h != 1 || c->dil_w != 1) return "dilation other than 1 is not emulated";
    if (y->n != x->n || y->c != w->k || y->h != out_dim(x->h, c->pad_h, w->h, 1, c->u) ||
        y->w != out_dim(x->w, c->pad_w, w->w, 1, c->v))
        return "y's dimensions are not those of cudnnGetConvolution2dForwardOutputDim";
    return nullptr;
}

static size_t algo_workspace(cudnnConvolutionFwdAlgo_t a, const cudnnTensorStruct *x, const cudnnFilterStruct *w,
                             const cudnnTensorStruct *y) {
    size_t es = dnn_size(x->type);
    switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return 0;
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return (size_t)w->h * w->w * y->h * 4 + 256;
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return (size_t)y->n * y->h * y->w * w->h * w->w * x->c * es;
    default: return (size_t)1 << 20;
    }
}

static uint64_t problem_key(const cudnnTensorStruct *x, const cudnnFilterStruct *w, const cudnnConvolutionStruct *c) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix((uint64_t)x->format), mix((uint64_t)x->type), mix((uint64_t)x->n), mix((uint64_t)x->c), mix((uint64_t)x->h);
    mix((uint64_t)x->w), mix((uint64_t)w->k), mix((uint64_t)w->h), mix((uint64_t)c->pad_h), mix((uint64_t)c->u);
    return h;
}

static bool range_ok(const char *what, const void *p, size_t bytes, bool must_be_written) {
    if (!device_range_live(p, bytes)) {
        char d[256];
        device_describe(p, d, sizeof d);
        report("cudaErrorIllegalAddress in cuDNN: %s (%zu bytes) is not inside one live allocation: %s", what, bytes, d);
        set_sticky(cudaErrorIllegalAddress);
        return false;
    }
    size_t first = 0;
    if (must_be_written && count_uninitialised(p, bytes, &first)) {
        char d[256];
        device_describe((const char *)p + first, d, sizeof d);
        report("cudaErrorLaunchFailure in cuDNN: %s reads uninitialised device memory: %s", what, d);
        set_sticky(cudaErrorLaunchFailure);
        return false;
    }
    return true;
}

/* y = act(alpha1 * conv(x, w) + alpha2 * z + bias) (z, bias optional), or,
 * with blend, y = alpha1 * conv(x, w) + alpha2 * y. Runs when the stream gets there. */
struct ConvCall {
    cudnnTensorStruct x, y;
    cudnnFilterStruct w;
    cudnnConvolutionStruct c;
    float alpha1, alpha2;
    const void *X, *Wt, *Z, *Bias;
    void *Y, *ws;
    size_t ws_bytes;
    bool blend, relu;

    void run() const {
        const size_t es = dnn_size(x.type);
        if (!range_ok("x", X, tensor_elems(&x) * es, true) ||
            !range_ok("w", Wt, (size_t)w.k * w.c * w.h * w.w * es, true) ||
            !range_ok("y", Y, tensor_elems(&y) * es, blend && alpha2 != 0.0f) ||
            (Z && !range_ok("z", Z, tensor_elems(&y) * es, alpha2 != 0.0f)) ||
            (Bias && !range_ok("bias", Bias, (size_t)y.c * es, true)) ||
            (ws_bytes && !range_ok("workspace", ws, ws_bytes, false)))
            return;
        if (ws_bytes) {
            memset(ws, 0xff, ws_bytes); /* cuDNN owns its contents during the call */
            mark_initialised(ws, ws_bytes);
        }
        const int N = x.n, C = x.c, H = x.h, W = x.w, K = w.k, R = w.h, S = w.w, Ho = y.h, Wo = y.w;
        const size_t rows = (size_t)N * Ho * Wo, kdim = (size_t)R * S * C;
        std::vector<float> col(rows * kdim), wf((size_t)K * kdim), out(rows * K);
        for (int k = 0; k < K; k++) /* the filter as [K][r][s][c] */
            for (int r = 0; r < R; r++)
                for (int s = 0; s < S; s++)
                    for (int cc = 0; cc < C; cc++) {
                        int rr = c.mode == CUDNN_CONVOLUTION ? R - 1 - r : r, ss = c.mode == CUDNN_CONVOLUTION ? S - 1 - s : s;
                        wf[(size_t)k * kdim + ((size_t)r * S + s) * C + cc] = dnn_load(Wt, idx4(w.format, C, R, S, k, cc, rr, ss), w.type);
                    }
        for (int n = 0; n < N; n++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    float *cr = &col[(((size_t)n * Ho + oh) * Wo + ow) * kdim];
                    for (int r = 0; r < R; r++)
                        for (int s = 0; s < S; s++) {
                            int ih = oh * c.u + r - c.pad_h, iw = ow * c.v + s - c.pad_w;
                            bool in = ih >= 0 && ih < H && iw >= 0 && iw < W;
                            for (int cc = 0; cc < C; cc++)
                                cr[((size_t)r * S + s) * C + cc] = in ? dnn_load(X, idx4(x.format, C, H, W, n, cc, ih, iw), x.type) : 0.0f;
                        }
                }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, K, (int)kdim, 1.0f, col.data(), (int)kdim,
                    wf.data(), (int)kdim, 0.0f, out.data(), K);
        for (int n = 0; n < N; n++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++)
                    for (int k = 0; k < K; k++) {
                        size_t o = idx4(y.format, K, Ho, Wo, n, k, oh, ow);
                        float v = alpha1 * out[(((size_t)n * Ho + oh) * Wo + ow) * K + k];
                        if (blend) {
                            if (alpha2 != 0.0f) v += alpha2 * dnn_load(Y, o, y.type);
                        } else {
                            if (Z && alpha2 != 0.0f) v += alpha2 * dnn_load(Z, o, y.type);
                            if (Bias) v += dnn_load(Bias, (size_t)k, y.type);
                            if (relu && v < 0.0f) v = 0.0f;
                        }
                        dnn_store(Y, o, y.type, v);
                    }
        mark_initialised(Y, tensor_elems(&y) * es);
    }
};

template <class T> static T *dnn_obj(void *p, uint32_t magic) {
    T *o = (T *)p;
    return o && o->magic == magic ? o : nullptr;
}

/* Checks common to the two convolution calls; enqueues call on the handle's stream. */
static cudnnStatus_t enqueue_conv(cudnnContext *h, ConvCall &call, cudnnConvolutionFwdAlgo_t algo, const char *fn) {
    size_t need = algo_workspace(algo, &call.x, &call.w, &call.y);
    if (call.ws_bytes < need || (need && !call.ws)) {
        report("%s: workspace of %zu bytes, algorithm %d needs %zu (cudnnGetConvolutionForwardWorkspaceSize)", fn,
               call.ws_bytes, (int)algo, need);
        return CUDNN_STATUS_BAD_PARAM;
    }
    size_t es = dnn_size(call.x.type);
    const void *ptrs[5] = {call.X, call.Wt, call.Y, call.Z, call.Bias};
    for (const void *p : ptrs)
        if (p && ((uintptr_t)p % es)) {
            report("%s: a data pointer (%p) is not aligned to its %zu-byte elements", fn, p, es);
            return CUDNN_STATUS_BAD_PARAM;
        }
    if (call.Y == call.X) {
        report("%s: y must not alias x", fn);
        return CUDNN_STATUS_BAD_PARAM;
    }
    uint64_t key = problem_key(&call.x, &call.w, &call.c);
    if (stream_capturing(h->stream)) {
        if (!h->used.count(key) && env_long("FT_EMU_STRICT_LAZY_LOADING", 1)) {
            note_error(refuse_in_capture(h->stream, "first cuDNN convolution of a problem (cuDNN would load and "
                                                    "initialise its kernel inside the capture; run it once eagerly "
                                                    "first)"));
            return CUDNN_STATUS_EXECUTION_FAILED;
        }
    } else {
        h->used.insert(key);
    }
    call.ws_bytes = need;
    ConvCall c = call;
    cudaError_t e = enqueue_function(h->stream, [c] { c.run(); }, nullptr);
    if (e != cudaSuccess) {
        note_error(e);
        return CUDNN_STATUS_EXECUTION_FAILED;
    }
    return CUDNN_STATUS_SUCCESS;
}

} /* namespace emu */

using namespace emu;

#define DNN_BEGIN()                                 \
    std::lock_guard<std::mutex> api_lock_(g_api); \
    if (sticky() != cudaSuccess) return CUDNN_STATUS_EXECUTION_FAILED

extern "C" {

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

const char *cudnnGetErrorString(cudnnStatus_t s) {
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    default: return "CUDNN_STATUS_(other)";
    }
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    cudnnContext *c = new cudnnContext();
    c->magic = DNN_HANDLE;
    c->stream = 0;
    *h = c;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
    cudnnContext *c = dnn_obj<cudnnContext>(h, DNN_HANDLE);
    if (!c) return CUDNN_STATUS_BAD_PARAM;
    c->magic = 0;
    delete c;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    cudnnContext *c = dnn_obj<cudnnContext>(h, DNN_HANDLE);
    if (!c) return CUDNN_STATUS_BAD_PARAM;
    c->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

#define CREATE_DESTROY(Type, Struct, Magic, Create, Destroy) \
    cudnnStatus_t Create(Type *d) {                         \
        Struct *o = new Struct();                           \
        memset((void *)o, 0, sizeof *o);                    \
        o->magic = Magic;                                   \
        *d = o;                                             \
        return CUDNN_STATUS_SUCCESS;                        \
    }                                                       \
    cudnnStatus_t Destroy(Type d) {                         \
        Struct *o = dnn_obj<Struct>(d, Magic);              \
        if (!o) return CUDNN_STATUS_BAD_PARAM;              \
        o->magic = 0;                                       \
        delete o;                                           \
        return CUDNN_STATUS_SUCCESS;                        \
    }
CREATE_DESTROY(cudnnTensorDescriptor_t, cudnnTensorStruct, DNN_TENSOR, cudnnCreateTensorDescriptor,
               cudnnDestroyTensorDescriptor)
CREATE_DESTROY(cudnnFilterDescriptor_t, cudnnFilterStruct, DNN_FILTER, cudnnCreateFilterDescriptor,
               cudnnDestroyFilterDescriptor)
CREATE_DESTROY(cudnnConvolutionDescriptor_t, cudnnConvolutionStruct, DNN_CONV, cudnnCreateConvolutionDescriptor,
               cudnnDestroyConvolutionDescriptor)
CREATE_DESTROY(cudnnActivationDescriptor_t, cudnnActivationStruct, DNN_ACT, cudnnCreateActivationDescriptor,
               cudnnDestroyActivationDescriptor)

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
    cudnnTensorStruct *t = dnn_obj<cudnnTensorStruct>(d, DNN_TENSOR);
    if (!t || n < 1 || c < 1 || h < 1 || w < 1 || !dnn_type_ok(type) ||
        (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC))
        return CUDNN_STATUS_BAD_PARAM;
    *t = cudnnTensorStruct{DNN_TENSOR, true, format, type, n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
    cudnnFilterStruct *f = dnn_obj<cudnnFilterStruct>(d, DNN_FILTER);
    if (!f || k < 1 || c < 1 || h < 1 || w < 1 || !dnn_type_ok(type) ||
        (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC))
        return CUDNN_STATUS_BAD_PARAM;
    *f = cudnnFilterStruct{DNN_FILTER, true, format, type, k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dil_h, int dil_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
    cudnnConvolutionStruct *c = dnn_obj<cudnnConvolutionStruct>(d, DNN_CONV);
    if (!c || pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dil_h < 1 || dil_w < 1) return CUDNN_STATUS_BAD_PARAM;
    cudnnMathType_t math = c->set ? c->math : CUDNN_DEFAULT_MATH;
    *c = cudnnConvolutionStruct{DNN_CONV, true, pad_h, pad_w, u, v, dil_h, dil_w, mode, compute, math};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
    cudnnConvolutionStruct *c = dnn_obj<cudnnConvolutionStruct>(d, DNN_CONV);
    if (!c) return CUDNN_STATUS_BAD_PARAM;
    c->math = math;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t d,
                                                    const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd,
                                                    int *n, int *c, int *h, int *w) {
    cudnnConvolutionStruct *cv = dnn_obj<cudnnConvolutionStruct>(d, DNN_CONV);
    cudnnTensorStruct *x = dnn_obj<cudnnTensorStruct>(xd, DNN_TENSOR);
    cudnnFilterStruct *f = dnn_obj<cudnnFilterStruct>(wd, DNN_FILTER);
    if (!cv || !x || !f || !cv->set || !x->set || !f->set || x->c != f->c) return CUDNN_STATUS_BAD_PARAM;
    *n = x->n, *c = f->k;
    *h = out_dim(x->h, cv->pad_h, f->h, cv->dil_h, cv->u);
    *w = out_dim(x->w, cv->pad_w, f->w, cv->dil_w, cv->v);
    return *h > 0 && *w > 0 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t d, cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t nan, double coef) {
    (void)nan;
    cudnnActivationStruct *a = dnn_obj<cudnnActivationStruct>(d, DNN_ACT);
    if (!a) return CUDNN_STATUS_BAD_PARAM;
    *a = cudnnActivationStruct{DNN_ACT, true, mode, coef};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                     const cudnnFilterDescriptor_t wd,
                                                     const cudnnConvolutionDescriptor_t cd,
                                                     const cudnnTensorDescriptor_t yd, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf) {
    cudnnTensorStruct *x = dnn_obj<cudnnTensorStruct>(xd, DNN_TENSOR), *y = dnn_obj<cudnnTensorStruct>(yd, DNN_TENSOR);
    cudnnFilterStruct *w = dnn_obj<cudnnFilterStruct>(wd, DNN_FILTER);
    cudnnConvolutionStruct *c = dnn_obj<cudnnConvolutionStruct>(cd, DNN_CONV);
    if (!dnn_obj<cudnnContext>(h, DNN_HANDLE) || requested < 1) return CUDNN_STATUS_BAD_PARAM;
    if (const char *why = conv_check(x, w, c, y)) {
        report("cudnnGetConvolutionForwardAlgorithm_v7: %s", why);
        return CUDNN_STATUS_BAD_PARAM;
    }
    const cudnnConvolutionFwdAlgo_t order[3] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                                CUDNN_CONVOLUTION_FWD_ALGO_GEMM};
    int n = requested < 3 ? requested : 3;
    for (int i = 0; i < n; i++) {
        memset(&perf[i], 0, sizeof perf[i]);
        perf[i].algo = order[i];
        perf[i].status = CUDNN_STATUS_SUCCESS;
        perf[i].time = -1.0f;
        perf[i].memory = algo_workspace(order[i], x, w, y);
        perf[i].determinism = CUDNN_DETERMINISTIC;
        perf[i].mathType = c->math;
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                      const cudnnFilterDescriptor_t wd,
                                                      const cudnnConvolutionDescriptor_t cd,
                                                      const cudnnTensorDescriptor_t yd, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes) {
    cudnnTensorStruct *x = dnn_obj<cudnnTensorStruct>(xd, DNN_TENSOR), *y = dnn_obj<cudnnTensorStruct>(yd, DNN_TENSOR);
    cudnnFilterStruct *w = dnn_obj<cudnnFilterStruct>(wd, DNN_FILTER);
    cudnnConvolutionStruct *c = dnn_obj<cudnnConvolutionStruct>(cd, DNN_CONV);
    if (!dnn_obj<cudnnContext>(h, DNN_HANDLE)) return CUDNN_STATUS_BAD_PARAM;
    if (const char *why = conv_check(x, w, c, y)) {
        report("cudnnGetConvolutionForwardWorkspaceSize: %s", why);
        return CUDNN_STATUS_BAD_PARAM;
    }
    *bytes = algo_workspace(algo, x, w, y);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo, void *ws,
                                      size_t ws_bytes, const void *beta, const cudnnTensorDescriptor_t yd, void *y) {
    DNN_BEGIN();
    cudnnContext *hc = dnn_obj<cudnnContext>(h, DNN_HANDLE);
    cudnnTensorStruct *xt = dnn_obj<cudnnTensorStruct>(xd, DNN_TENSOR), *yt = dnn_obj<cudnnTensorStruct>(yd, DNN_TENSOR);
    cudnnFilterStruct *wt = dnn_obj<cudnnFilterStruct>(wd, DNN_FILTER);
    cudnnConvolutionStruct *c = dnn_obj<cudnnConvolutionStruct>(cd, DNN_CONV);
    if (!hc || !alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    if (const char *why = conv_check(xt, wt, c, yt)) {
        report("cudnnConvolutionForward: %s", why);
        return CUDNN_STATUS_BAD_PARAM;
    }
    ConvCall call = {*xt, *yt, *wt, *c, 0, 0, x, w, nullptr, nullptr, y, ws, ws_bytes, true, false};
    memcpy(&call.alpha1, alpha, 4);
    memcpy(&call.alpha2, beta, 4);
    return enqueue_conv(hc, call, algo, "cudnnConvolutionForward");
}

cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t h, const void *alpha1, const cudnnTensorDescriptor_t xd, const void *x, const cudnnFilterDescriptor_t wd,
    const void *w, const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes,
    const void *alpha2, const cudnnTensorDescriptor_t zd, const void *z, const cudnnTensorDescriptor_t bd,
    const void *bias, const cudnnActivationDescriptor_t ad, const cudnnTensorDescriptor_t yd, void *y) {
    DNN_BEGIN();
    cudnnContext *hc = dnn_obj<cudnnContext>(h, DNN_HANDLE);
    cudnnTensorStruct *xt = dnn_obj<cudnnTensorStruct>(xd, DNN_TENSOR), *yt = dnn_obj<cudnnTensorStruct>(yd, DNN_TENSOR);
    cudnnTensorStruct *zt = dnn_obj<cudnnTensorStruct>(zd, DNN_TENSOR), *bt = dnn_obj<cudnnTensorStruct>(bd, DNN_TENSOR);
    cudnnFilterStruct *wt = dnn_obj<cudnnFilterStruct>(wd, DNN_FILTER);
    cudnnConvolutionStruct *c = dnn_obj<cudnnConvolutionStruct>(cd, DNN_CONV);
    cudnnActivationStruct *a = dnn_obj<cudnnActivationStruct>(ad, DNN_ACT);
    if (!hc || !alpha1 || !alpha2 || !a || !a->set || !zt || !bt || !z || !bias) return CUDNN_STATUS_BAD_PARAM;
    if (const char *why = conv_check(xt, wt, c, yt)) {
        report("cudnnConvolutionBiasActivationForward: %s", why);
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (env_long("FT_EMU_CUDNN_NO_FUSED", 0)) return CUDNN_STATUS_NOT_SUPPORTED;
    if (a->mode != CUDNN_ACTIVATION_IDENTITY && a->mode != CUDNN_ACTIVATION_RELU) return CUDNN_STATUS_NOT_SUPPORTED;
    if (a->mode == CUDNN_ACTIVATION_IDENTITY && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        return CUDNN_STATUS_NOT_SUPPORTED; /* documented: identity only with IMPLICIT_PRECOMP_GEMM */
    if (zt->n != yt->n || zt->c != yt->c || zt->h != yt->h || zt->w != yt->w || zt->type != yt->type ||
        zt->format != yt->format) {
        report("cudnnConvolutionBiasActivationForward: z must have y's dimensions, type and format");
        return CUDNN_STATUS_BAD_PARAM;
    }
    if (bt->n != 1 || bt->c != yt->c || bt->h != 1 || bt->w != 1 || bt->type != yt->type) {
        report("cudnnConvolutionBiasActivationForward: the bias must be 1 x %d x 1 x 1 of y's type (%s), not %dx%dx%dx%d "
               "%s",
               yt->c, dnn_type_name(yt->type), bt->n, bt->c, bt->h, bt->w, dnn_type_name(bt->type));
        return CUDNN_STATUS_BAD_PARAM;
    }
    ConvCall call = {*xt, *yt, *wt, *c, 0, 0, x, w, z, bias, y, ws, ws_bytes, false,
                     a->mode == CUDNN_ACTIVATION_RELU};
    memcpy(&call.alpha1, alpha1, 4);
    memcpy(&call.alpha2, alpha2, 4);
    return enqueue_conv(hc, call, algo, "cudnnConvolutionBiasActivationForward");
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t ad, const void *A,
                             const void *beta, const cudnnTensorDescriptor_t cd, void *C) {
    DNN_BEGIN();
    cudnnContext *hc = dnn_obj<cudnnContext>(h, DNN_HANDLE);
    cudnnTensorStruct *a = dnn_obj<cudnnTensorStruct>(ad, DNN_TENSOR), *c = dnn_obj<cudnnTensorStruct>(cd, DNN_TENSOR);
    if (!hc || !a || !c || !a->set || !c->set || !alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    /* A broadcasts along every dimension where it is 1 */
    if ((a->n != 1 && a->n != c->n) || (a->c != 1 && a->c != c->c) || (a->h != 1 && a->h != c->h) ||
        (a->w != 1 && a->w != c->w) || a->type != c->type) {
        report("cudnnAddTensor: A (%dx%dx%dx%d) does not broadcast to C (%dx%dx%dx%d) or has another type", a->n, a->c,
               a->h, a->w, c->n, c->c, c->h, c->w);
        return CUDNN_STATUS_BAD_PARAM;
    }
    float al, bl;
    memcpy(&al, alpha, 4);
    memcpy(&bl, beta, 4);
    cudnnTensorStruct at = *a, ct = *c;
    cudaError_t e = enqueue_function(
        hc->stream,
        [at, ct, A, C, al, bl] {
            size_t es = dnn_size(ct.type);
            if (!range_ok("cudnnAddTensor A", A, tensor_elems(&at) * es, true) ||
                !range_ok("cudnnAddTensor C", C, tensor_elems(&ct) * es, bl != 0.0f))
                return;
            for (int n = 0; n < ct.n; n++)
                for (int cc = 0; cc < ct.c; cc++)
                    for (int hh = 0; hh < ct.h; hh++)
                        for (int ww = 0; ww < ct.w; ww++) {
                            size_t o = idx4(ct.format, ct.c, ct.h, ct.w, n, cc, hh, ww);
                            size_t ia = idx4(at.format, at.c, at.h, at.w, at.n == 1 ? 0 : n, at.c == 1 ? 0 : cc,
                                             at.h == 1 ? 0 : hh, at.w == 1 ? 0 : ww);
                            float v = al * dnn_load(A, ia, at.type) + (bl != 0.0f ? bl * dnn_load(C, o, ct.type) : 0.0f);
                            dnn_store(C, o, ct.type, v);
                        }
            mark_initialised(C, tensor_elems(&ct) * es);
        },
        nullptr);
    if (e != cudaSuccess) {
        note_error(e);
        return CUDNN_STATUS_EXECUTION_FAILED;
    }
    return CUDNN_STATUS_SUCCESS;
}

} /* extern "C" */
#endif /* FT_WITH_CUDNN */
