/*
 * kernels/emu/cublaslt.cpp — the cuBLASLt subset the backend uses, on the CPU.
 *
 * Descriptors, layouts and preferences hold what was set on them; attributes
 * this emulator does not implement are refused by name, so a new use cannot
 * silently mean something else. cublasLtMatmulAlgoGetHeuristic validates the
 * problem as the library documents it (compute type 32F with scale 32F; A and
 * B both bf16 or both fp16; C and D the same type, that 16-bit type or f32;
 * column-major layouts with ld >= rows; epilogues DEFAULT, BIAS, GELU,
 * GELU_BIAS; the bias of D's type) and returns one algorithm, which records
 * the problem, the alignments it was chosen for and a workspace size.
 * cublasLtMatmul checks the pointers against them (alignment, device memory,
 * every operand's extent inside its allocation, the workspace) and enqueues
 * the product: the 16-bit operands widened to f32, one f32 GEMM (OpenBLAS),
 * alpha, beta, the bias along D's rows, GELU (tanh form), then one rounding
 * to D's type.
 *
 * Switches: FT_EMU_CUBLASLT_STRICT_BIAS=1 refuses an f32 bias with a 16-bit
 * output (documented: the bias has D's type), FT_EMU_CUBLASLT_NO_EPILOGUES=1
 * refuses every fused epilogue; both make the caller's fallback path run.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <set>

#include "internal.h"

namespace emu {

enum : uint32_t { LT_HANDLE = 0x4c544831, LT_DESC = 0x4c544432, LT_LAYOUT = 0x4c544c33, LT_PREF = 0x4c545034 };
static const uint64_t ALGO_MAGIC = 0x454d55414c474f31ull; /* "EMUALGO1" */

struct LtHandle {
    uint32_t magic = LT_HANDLE;
    std::set<uint64_t> used; /* problems run outside capture */
};
struct LtDesc {
    uint32_t magic = LT_DESC;
    cublasComputeType_t compute;
    cudaDataType_t scale;
    int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
    int32_t bias_type = -1;
};
struct LtLayout {
    uint32_t magic = LT_LAYOUT;
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};
struct LtPref {
    uint32_t magic = LT_PREF;
    uint64_t max_workspace = 0;
    uint32_t align[4] = {256, 256, 256, 256}; /* A, B, C, D: the library's defaults */
};

static size_t type_size(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }
static const char *type_name(int t) {
    return t == CUDA_R_32F ? "f32" : t == CUDA_R_16BF ? "bf16" : t == CUDA_R_16F ? "f16" : "other";
}

template <class T> static T *checked(void *p, uint32_t magic) {
    T *o = (T *)p;
    return o && o->magic == magic ? o : nullptr;
}

/* Frees an object made by a *Create call; a stale or foreign handle gives `bad`. */
template <class T> static cublasStatus_t destroy(void *p, uint32_t magic, cublasStatus_t bad) {
    T *o = checked<T>(p, magic);
    if (!o) return bad;
    o->magic = 0;
    delete o;
    return CUBLAS_STATUS_SUCCESS;
}

static bool has_bias(uint32_t epi) { return epi == CUBLASLT_EPILOGUE_BIAS || epi == CUBLASLT_EPILOGUE_GELU_BIAS; }
static bool has_gelu(uint32_t epi) { return epi == CUBLASLT_EPILOGUE_GELU || epi == CUBLASLT_EPILOGUE_GELU_BIAS; }

/* The problem's fingerprint (algorithms are valid for one problem). */
static uint64_t fingerprint(const LtDesc *d, const LtLayout *a, const LtLayout *b, const LtLayout *c) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix((uint64_t)d->compute), mix((uint64_t)d->transa), mix((uint64_t)d->transb), mix(d->epilogue);
    mix((uint64_t)(uint32_t)d->bias_type);
    for (const LtLayout *l : {a, b, c}) mix((uint64_t)l->type), mix(l->rows), mix(l->cols), mix((uint64_t)l->ld);
    return h;
}

/* Validates the problem; NULL when supported, else why not. */
static const char *validate(const LtDesc *d, const LtLayout *a, const LtLayout *b, const LtLayout *c, const LtLayout *dd,
                            char *buf, size_t n) {
    if (d->compute != CUBLAS_COMPUTE_32F || d->scale != CUDA_R_32F) return "compute type must be 32F with scale 32F";
    if (a->type != b->type || (a->type != CUDA_R_16BF && a->type != CUDA_R_16F)) return "A and B must both be bf16 or both fp16";
    if (c->type != dd->type || (c->type != a->type && c->type != CUDA_R_32F))
        return "C and D must have one type: A's 16-bit type or f32";
    if ((d->transa != CUBLAS_OP_N && d->transa != CUBLAS_OP_T) || (d->transb != CUBLAS_OP_N && d->transb != CUBLAS_OP_T))
        return "transposes must be N or T";
    uint64_t m = dd->rows, nn = dd->cols;
    uint64_t am = d->transa == CUBLAS_OP_N ? a->rows : a->cols, ak = d->transa == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t bk = d->transb == CUBLAS_OP_N ? b->rows : b->cols, bn = d->transb == CUBLAS_OP_N ? b->cols : b->rows;
    if (am != m || bn != nn || ak != bk || c->rows != m || c->cols != nn) {
        snprintf(buf, n, "shapes do not agree: op(A) %llux%llu, op(B) %llux%llu, C %llux%llu, D %llux%llu",
                 (unsigned long long)am, (unsigned long long)ak, (unsigned long long)bk, (unsigned long long)bn,
                 (unsigned long long)c->rows, (unsigned long long)c->cols, (unsigned long long)m, (unsigned long long)nn);
        return buf;
    }
    for (const LtLayout *l : {a, b, c, dd})
        if (!l->rows || !l->cols || l->ld < (int64_t)l->rows) {
            snprintf(buf, n, "a %llux%llu layout with ld %lld (column-major needs ld >= rows)", (unsigned long long)l->rows,
                     (unsigned long long)l->cols, (long long)l->ld);
            return buf;
        }
    uint32_t e = d->epilogue;
    if (e != CUBLASLT_EPILOGUE_DEFAULT && e != CUBLASLT_EPILOGUE_BIAS && e != CUBLASLT_EPILOGUE_GELU &&
        e != CUBLASLT_EPILOGUE_GELU_BIAS)
        return "epilogue not emulated (DEFAULT, BIAS, GELU, GELU_BIAS are)";
    if (has_bias(e)) {
        int bt = d->bias_type < 0 ? (int)dd->type : d->bias_type;
        if (bt != (int)dd->type && !(bt == CUDA_R_32F && dd->type != CUDA_R_32F))
            return "the bias type must be D's type (or f32 with a 16-bit D)";
    }
    return nullptr;
}

/* Epilogue combinations this run accepts (the switches in the header). */
static const char *refused(const LtDesc *d, const LtLayout *dd) {
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && env_long("FT_EMU_CUBLASLT_NO_EPILOGUES", 0))
        return "fused epilogues are switched off (FT_EMU_CUBLASLT_NO_EPILOGUES=1)";
    int bt = d->bias_type < 0 ? (int)dd->type : d->bias_type;
    if (has_bias(d->epilogue) && bt == CUDA_R_32F && dd->type != CUDA_R_32F && env_long("FT_EMU_CUBLASLT_STRICT_BIAS", 0))
        return "an f32 bias with a 16-bit output is outside the documented combinations (FT_EMU_CUBLASLT_STRICT_BIAS=1)";
    return nullptr;
}

static float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

static ElemType elem_of(cudaDataType_t t) {
    return t == CUDA_R_32F ? ELEM_F32 : t == CUDA_R_16BF ? ELEM_BF16 : ELEM_F16;
}
static float load(const void *p, size_t i, cudaDataType_t t) { return elem_load(p, i, elem_of(t)); }
static void store(void *p, size_t i, cudaDataType_t t, float v) { elem_store(p, i, elem_of(t), v); }

/* The operand's columns lie inside one live allocation and were written. */
static bool operand_ok(const char *name, const void *p, const LtLayout *l, bool must_be_written) {
    size_t es = type_size(l->type);
    size_t bytes = ((l->cols - 1) * (size_t)l->ld + l->rows) * es;
    if (!device_range_live(p, bytes)) {
        char d[256];
        device_describe(p, d, sizeof d);
        report("cudaErrorIllegalAddress in cublasLtMatmul: operand %s (%llux%llu %s, ld %lld, %zu bytes) is not inside one "
               "live allocation: %s",
               name, (unsigned long long)l->rows, (unsigned long long)l->cols, type_name(l->type), (long long)l->ld, bytes,
               d);
        set_sticky(cudaErrorIllegalAddress);
        return false;
    }
    if (must_be_written)
        for (uint64_t c = 0; c < l->cols; c++) {
            size_t first = 0;
            const char *col = (const char *)p + c * (size_t)l->ld * es;
            if (count_uninitialised(col, l->rows * es, &first)) {
                char d[256];
                device_describe(col + first, d, sizeof d);
                report("cudaErrorLaunchFailure in cublasLtMatmul: operand %s reads uninitialised device memory: %s", name, d);
                set_sticky(cudaErrorLaunchFailure);
                return false;
            }
        }
    return true;
}

struct MatmulCall {
    LtDesc d;
    LtLayout a, b, c, dd;
    float alpha, beta;
    const void *A, *B, *C;
    void *D;
    void *ws;
    size_t ws_bytes;

    void run() const {
        const bool bias = has_bias(d.epilogue);
        const cudaDataType_t bt = d.bias_type < 0 ? dd.type : (cudaDataType_t)d.bias_type;
        if (!operand_ok("A", A, &a, true) || !operand_ok("B", B, &b, true) ||
            (beta != 0.0f && !operand_ok("C", C, &c, true)) || !operand_ok("D", D, &dd, false))
            return;
        if (bias) {
            LtLayout bl = {LT_LAYOUT, bt, dd.rows, 1, (int64_t)dd.rows};
            if (!operand_ok("bias", d.bias, &bl, true)) return;
        }
        if (ws_bytes) {
            if (!device_range_live(ws, ws_bytes)) {
                report("cudaErrorIllegalAddress in cublasLtMatmul: the workspace (%zu bytes at %p) is not device memory",
                       ws_bytes, ws);
                set_sticky(cudaErrorIllegalAddress);
                return;
            }
            memset(ws, 0xff, ws_bytes); /* cuBLASLt owns its contents during the call */
            mark_initialised(ws, ws_bytes);
        }
        const size_t m = dd.rows, n = dd.cols, k = d.transa == CUBLAS_OP_N ? a.cols : a.rows;
        std::vector<float> fa(m * k), fb(k * n), fd(m * n);
        for (size_t j = 0; j < k; j++) /* op(A) as m x k, column-major */
            for (size_t i = 0; i < m; i++)
                fa[j * m + i] = d.transa == CUBLAS_OP_N ? load(A, j * (size_t)a.ld + i, a.type)
                                                        : load(A, i * (size_t)a.ld + j, a.type);
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0; i < k; i++)
                fb[j * k + i] = d.transb == CUBLAS_OP_N ? load(B, j * (size_t)b.ld + i, b.type)
                                                        : load(B, i * (size_t)b.ld + j, b.type);
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, fa.data(), (int)m, fb.data(),
                    (int)k, 0.0f, fd.data(), (int)m);
        for (size_t j = 0; j < n; j++) {
            for (size_t i = 0; i < m; i++) {
                float v = alpha * fd[j * m + i];
                if (beta != 0.0f) v += beta * load(C, j * (size_t)c.ld + i, c.type);
                if (bias) v += load(d.bias, i, bt);
                if (has_gelu(d.epilogue)) v = gelu_tanh(v);
                store(D, j * (size_t)dd.ld + i, dd.type, v);
            }
            mark_initialised((char *)D + j * (size_t)dd.ld * type_size(dd.type), m * type_size(dd.type));
        }
    }
};

} /* namespace emu */

using namespace emu;

#define LT_BEGIN()                                 \
    std::lock_guard<std::mutex> api_lock_(g_api); \
    if (sticky() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED

static cublasStatus_t lt_refuse(const char *fmt, const char *what, int v) {
    report(fmt, what, v);
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = (cublasLtHandle_t) new LtHandle();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    return destroy<LtHandle>(h, LT_HANDLE, CUBLAS_STATUS_NOT_INITIALIZED);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale) {
    LtDesc *o = new LtDesc();
    o->compute = compute;
    o->scale = scale;
    *d = (cublasLtMatmulDesc_t)o;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    return destroy<LtDesc>(d, LT_DESC, CUBLAS_STATUS_INVALID_VALUE);
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void *buf,
                                              size_t size) {
    LtDesc *o = checked<LtDesc>(d, LT_DESC);
    if (!o || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(attr == CUBLASLT_MATMUL_DESC_TRANSA ? &o->transa : &o->transb, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&o->epilogue, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&o->bias, buf, sizeof(void *));
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&o->bias_type, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: {
        int32_t mode;
        if (size != sizeof mode) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&mode, buf, 4);
        return mode == CUBLASLT_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS
                                                  : lt_refuse("cuBLASLt emulator: %s %d is not emulated", "pointer mode", mode);
    }
    default: return lt_refuse("cuBLASLt emulator: %s %d is not emulated", "matmul descriptor attribute", (int)attr);
    }
}

cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, void *buf,
                                              size_t size, size_t *written) {
    LtDesc *o = checked<LtDesc>(d, LT_DESC);
    if (!o) return CUBLAS_STATUS_INVALID_VALUE;
    const void *src = nullptr;
    size_t n = 4;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: src = &o->transa; break;
    case CUBLASLT_MATMUL_DESC_TRANSB: src = &o->transb; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: src = &o->epilogue; break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: src = &o->bias_type; break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: src = &o->bias, n = sizeof(void *); break;
    default: return lt_refuse("cuBLASLt emulator: %s %d is not emulated", "matmul descriptor attribute", (int)attr);
    }
    if (written) *written = n;
    if (!buf) return size == 0 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    if (size < n) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, src, n);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    LtLayout *o = new LtLayout();
    o->type = type, o->rows = rows, o->cols = cols, o->ld = ld;
    *l = (cublasLtMatrixLayout_t)o;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    return destroy<LtLayout>(l, LT_LAYOUT, CUBLAS_STATUS_INVALID_VALUE);
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t size) {
    LtLayout *o = checked<LtLayout>(l, LT_LAYOUT);
    if (!o || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    int64_t v = 0;
    if (size == 4) {
        int32_t x;
        memcpy(&x, buf, 4);
        v = x;
    } else if (size == 8) {
        memcpy(&v, buf, 8);
    } else {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_ROWS: o->rows = (uint64_t)v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_COLS: o->cols = (uint64_t)v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_LD: o->ld = v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_ORDER:
        return v == CUBLASLT_ORDER_COL ? CUBLAS_STATUS_SUCCESS : lt_refuse("cuBLASLt emulator: %s %d is not emulated", "order", (int)v);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
        return v == 1 ? CUBLAS_STATUS_SUCCESS : lt_refuse("cuBLASLt emulator: %s %d is not emulated", "batch count", (int)v);
    default: return lt_refuse("cuBLASLt emulator: %s %d is not emulated", "layout attribute", (int)attr);
    }
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = (cublasLtMatmulPreference_t) new LtPref();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    return destroy<LtPref>(p, LT_PREF, CUBLAS_STATUS_INVALID_VALUE);
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t size) {
    LtPref *o = checked<LtPref>(p, LT_PREF);
    if (!o || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        if (size != 8) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&o->max_workspace, buf, 8);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: {
        if (size != 4) return CUBLAS_STATUS_INVALID_VALUE;
        int i = attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES ? 0
              : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES ? 1
              : attr == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES ? 2
                                                                   : 3;
        memcpy(&o->align[i], buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    }
    default: return lt_refuse("cuBLASLt emulator: %s %d is not emulated", "preference attribute", (int)attr);
    }
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t la,
                                              cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc,
                                              cublasLtMatrixLayout_t ld, cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *returned) {
    LT_BEGIN();
    *returned = 0;
    LtDesc *d = checked<LtDesc>(desc, LT_DESC);
    LtLayout *a = checked<LtLayout>(la, LT_LAYOUT), *b = checked<LtLayout>(lb, LT_LAYOUT),
             *c = checked<LtLayout>(lc, LT_LAYOUT), *dd = checked<LtLayout>(ld, LT_LAYOUT);
    LtPref *p = checked<LtPref>(pref, LT_PREF);
    if (!checked<LtHandle>(h, LT_HANDLE) || !d || !a || !b || !c || !dd || !p || requested < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    char buf[256];
    if (const char *why = validate(d, a, b, c, dd, buf, sizeof buf)) {
        report("cublasLtMatmulAlgoGetHeuristic: not supported: %s", why);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (refused(d, dd)) return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(&results[0], 0, sizeof results[0]);
    cublasLtMatmulAlgo_t &al = results[0].algo;
    al.data[0] = ALGO_MAGIC;
    al.data[1] = fingerprint(d, a, b, c);
    for (int i = 0; i < 4; i++) al.data[2 + i] = p->align[i];
    results[0].workspaceSize = p->max_workspace < ((size_t)1 << 20) ? p->max_workspace : ((size_t)1 << 20);
    al.data[6] = results[0].workspaceSize;
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t la, const void *B, cublasLtMatrixLayout_t lb, const void *beta,
                              const void *C, cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes, cudaStream_t stream) {
    LT_BEGIN();
    LtHandle *hh = checked<LtHandle>(h, LT_HANDLE);
    LtDesc *d = checked<LtDesc>(desc, LT_DESC);
    LtLayout *a = checked<LtLayout>(la, LT_LAYOUT), *b = checked<LtLayout>(lb, LT_LAYOUT),
             *c = checked<LtLayout>(lc, LT_LAYOUT), *dd = checked<LtLayout>(ld, LT_LAYOUT);
    if (!hh || !d || !a || !b || !c || !dd || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    char buf[256];
    if (const char *why = validate(d, a, b, c, dd, buf, sizeof buf)) {
        report("cublasLtMatmul: not supported: %s", why);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (const char *why = refused(d, dd)) {
        report("cublasLtMatmul: %s", why);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    const uint64_t fp = fingerprint(d, a, b, c);
    size_t need_ws = 0;
    if (algo) {
        if (algo->data[0] != ALGO_MAGIC || algo->data[1] != fp) {
            report("cublasLtMatmul: the algorithm was chosen for another problem (shape, types, transposes or epilogue)");
            return CUBLAS_STATUS_INVALID_VALUE;
        }
        const void *ptrs[4] = {A, B, C, D};
        const char *names[4] = {"A", "B", "C", "D"};
        for (int i = 0; i < 4; i++)
            if ((uintptr_t)ptrs[i] % algo->data[2 + i]) {
                report("cublasLtMatmul: operand %s at %p is not %llu-byte aligned, the alignment its algorithm was chosen "
                       "for (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_%s_BYTES)",
                       names[i], ptrs[i], (unsigned long long)algo->data[2 + i], names[i]);
                return CUBLAS_STATUS_INVALID_VALUE;
            }
        need_ws = algo->data[6];
    }
    if (ws_bytes < need_ws || (need_ws && !ws)) {
        report("cublasLtMatmul: workspace of %zu bytes, the algorithm needs %zu", ws_bytes, need_ws);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (has_bias(d->epilogue) && !d->bias) {
        report("cublasLtMatmul: epilogue with a bias but CUBLASLT_MATMUL_DESC_BIAS_POINTER is NULL");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (stream_capturing(stream)) {
        if (!hh->used.count(fp) && env_long("FT_EMU_STRICT_LAZY_LOADING", 1)) {
            note_error(refuse_in_capture(stream, "first cublasLtMatmul of a problem (cuBLASLt would load and initialise "
                                                 "its kernel inside the capture; run it once eagerly first)"));
            return CUBLAS_STATUS_EXECUTION_FAILED;
        }
    } else {
        hh->used.insert(fp);
    }
    MatmulCall call;
    call.d = *d;
    call.a = *a, call.b = *b, call.c = *c, call.dd = *dd;
    memcpy(&call.alpha, alpha, 4);
    memcpy(&call.beta, beta, 4);
    call.A = A, call.B = B, call.C = C, call.D = D;
    call.ws = ws;
    call.ws_bytes = need_ws;
    cudaError_t e = enqueue_function(stream, [call] { call.run(); }, nullptr);
    if (e != cudaSuccess) {
        note_error(e);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

} /* extern "C" */
