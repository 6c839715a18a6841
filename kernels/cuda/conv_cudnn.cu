/* kernels/cuda/conv_cudnn.cu — the VAE's convolutions through cuDNN on act
 * NHWC feature maps (backend ops fm_conv, fm_conv_workspace, and the conv
 * weight upload in cuDNN's KRSC layout).
 *
 * Reference: kernels/cpu/conv2d.c (f32 NCHW). Here x, y are [N, S, S, C] bf16
 * (fp16) with fp32 accumulation on tensor cores (CUDNN_TENSOR_OP_MATH), the
 * weight [Cout, k, k, Cin] act, the bias the act copy of an FT_WEIGHT_BIAS.
 *
 * Every distinct problem (N, Cin, S, Cout, k, pad, up2x) gets its
 * descriptors and algorithms once, when the plan asks for its workspace
 * (fm_conv_workspace); the workspace lives in the plan. A conv runs as one
 * cudnnConvolutionBiasActivationForward — convolution, bias and the residual
 * add (z) fused, identity activation, which cuDNN allows only with
 * IMPLICIT_PRECOMP_GEMM — or, where cuDNN refuses that for a problem (found
 * on its first run, outside graph capture: plans run eagerly once),
 * cudnnConvolutionForward with the heuristic's best algorithm (accumulating
 * onto a copy of the residual) and cudnnAddTensor for the bias. A nearest-2x
 * upsample in front of a conv writes the upsampled input into the workspace
 * first (fmap.cu). FT_GEMM_DEBUG=1 logs which problems ran fused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_cudnn.cuh"
#include "fmap.cuh"
#include "gemm.cuh"

#ifdef FT_WITH_CUDNN
#include <cudnn.h>

#define CU_CONV_CACHE 128
#define CU_CONV_MAX_WORKSPACE ((size_t)256 << 20)

typedef struct {
    int valid;
    int N, Cin, S, Cout, k, pad, up2x; /* key */
    ft_dtype act;                      /* key: the feature maps' type */
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t algo;   /* for the unfused path */
    size_t ws_fused, ws_plain, up_bytes;
    int fused; /* -1 not run yet, 1 fused, 0 cuDNN refused the fused call */
} cu_conv_entry;

struct cu_dnn {
    cudnnHandle_t h;
    cudnnActivationDescriptor_t identity;
    cu_conv_entry e[CU_CONV_CACHE];
    int next;
};

static int dnn_check_(ft_backend *be, cudnnStatus_t s, const char *what, int line) {
    if (s == CUDNN_STATUS_SUCCESS) return 1;
    ft_backend_fail(be, "cuDNN error %s in %s at kernels/cuda/conv_cudnn.cu:%d", cudnnGetErrorString(s), what, line);
    return 0;
}
#define DNN_CHECK(be, call) dnn_check_((be), (call), #call, __LINE__)

int cu_dnn_create(cu_impl *c, char *err, size_t err_size) {
    cu_dnn *d = (cu_dnn *)calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, err_size, "out of host memory");
        return 0;
    }
    cudnnStatus_t s = cudnnCreate(&d->h);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnSetStream(d->h, c->stream);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnCreateActivationDescriptor(&d->identity);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetActivationDescriptor(d->identity, CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0);
    if (s != CUDNN_STATUS_SUCCESS) {
        snprintf(err, err_size, "%s", cudnnGetErrorString(s));
        if (d->identity) cudnnDestroyActivationDescriptor(d->identity);
        if (d->h) cudnnDestroy(d->h);
        free(d);
        return 0;
    }
    c->dnn = d;
    return 1;
}

static void entry_release(cu_conv_entry *e) {
    if (!e->valid) return;
    if (e->x) cudnnDestroyTensorDescriptor(e->x);
    if (e->y) cudnnDestroyTensorDescriptor(e->y);
    if (e->b) cudnnDestroyTensorDescriptor(e->b);
    if (e->w) cudnnDestroyFilterDescriptor(e->w);
    if (e->conv) cudnnDestroyConvolutionDescriptor(e->conv);
    memset(e, 0, sizeof *e);
}

void cu_dnn_destroy(cu_impl *c) {
    cu_dnn *d = c->dnn;
    if (!d) return;
    for (int i = 0; i < CU_CONV_CACHE; i++) entry_release(&d->e[i]);
    cudnnDestroyActivationDescriptor(d->identity);
    cudnnDestroy(d->h);
    free(d);
    c->dnn = NULL;
}

static size_t align256(size_t b) { return (b + 255) / 256 * 256; }

/* The problem's entry, built on first use (descriptors, algorithms, workspace). */
static cu_conv_entry *conv_entry(ft_backend *be, int N, int Cin, int S, int Cout, int k, int pad, int up2x) {
    cu_impl *c = cu_of(be);
    cu_dnn *d = c->dnn;
    for (int i = 0; i < CU_CONV_CACHE; i++) {
        cu_conv_entry *e = &d->e[i];
        if (e->valid && e->N == N && e->Cin == Cin && e->S == S && e->Cout == Cout && e->k == k && e->pad == pad &&
            e->up2x == up2x && e->act == c->act)
            return e;
    }
    cu_conv_entry *e = &d->e[d->next];
    d->next = (d->next + 1) % CU_CONV_CACHE;
    entry_release(e);
    e->valid = 1;
    e->N = N, e->Cin = Cin, e->S = S, e->Cout = Cout, e->k = k, e->pad = pad, e->up2x = up2x;
    e->act = c->act;
    e->fused = -1;
    const cudnnDataType_t dt = c->act == FT_DTYPE_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
    const int Si = up2x ? 2 * S : S, So = Si + 2 * pad - k + 1;
    int on, oc, oh, ow;
    int ok = DNN_CHECK(be, cudnnCreateTensorDescriptor(&e->x)) && DNN_CHECK(be, cudnnCreateTensorDescriptor(&e->y)) &&
             DNN_CHECK(be, cudnnCreateTensorDescriptor(&e->b)) && DNN_CHECK(be, cudnnCreateFilterDescriptor(&e->w)) &&
             DNN_CHECK(be, cudnnCreateConvolutionDescriptor(&e->conv)) &&
             DNN_CHECK(be, cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NHWC, dt, N, Cin, Si, Si)) &&
             DNN_CHECK(be, cudnnSetFilter4dDescriptor(e->w, dt, CUDNN_TENSOR_NHWC, Cout, Cin, k, k)) &&
             DNN_CHECK(be, cudnnSetConvolution2dDescriptor(e->conv, pad, pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                                           CUDNN_DATA_FLOAT)) &&
             DNN_CHECK(be, cudnnSetConvolutionMathType(e->conv, CUDNN_TENSOR_OP_MATH)) &&
             DNN_CHECK(be, cudnnGetConvolution2dForwardOutputDim(e->conv, e->x, e->w, &on, &oc, &oh, &ow));
    if (ok && (on != N || oc != Cout || oh != So || ow != So)) {
        ft_backend_fail(be, "cuDNN: a %dx%d conv with pad %d of a %d-pixel map gives %dx%d, expected %d", k, k, pad, Si,
                        oh, ow, So);
        ok = 0;
    }
    ok = ok && DNN_CHECK(be, cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NHWC, dt, N, Cout, So, So)) &&
         DNN_CHECK(be, cudnnSetTensor4dDescriptor(e->b, CUDNN_TENSOR_NHWC, dt, 1, Cout, 1, 1));
    /* the fused call needs IMPLICIT_PRECOMP_GEMM (identity activation); the
     * plain one takes the heuristic's best algorithm that fits */
    ok = ok && DNN_CHECK(be, cudnnGetConvolutionForwardWorkspaceSize(d->h, e->x, e->w, e->conv, e->y,
                                                                     CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                                     &e->ws_fused));
    if (ok) {
        cudnnConvolutionFwdAlgoPerf_t perf[8];
        int n = 0;
        ok = DNN_CHECK(be, cudnnGetConvolutionForwardAlgorithm_v7(d->h, e->x, e->w, e->conv, e->y, 8, &n, perf));
        int pick = -1;
        for (int i = 0; ok && i < n && pick < 0; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= CU_CONV_MAX_WORKSPACE) pick = i;
        if (ok && pick < 0) {
            ft_backend_fail(be, "cuDNN offers no algorithm for a %dx%d conv %d -> %d channels on %dx%d", k, k, Cin,
                            Cout, Si, Si);
            ok = 0;
        }
        if (ok) {
            e->algo = perf[pick].algo;
            e->ws_plain = perf[pick].memory;
        }
    }
    e->up_bytes = up2x ? align256((size_t)N * Si * Si * Cin * 2) : 0;
    if (!ok) {
        entry_release(e);
        return NULL;
    }
    return e;
}

static size_t entry_workspace(const cu_conv_entry *e) {
    return e->up_bytes + align256(e->ws_fused > e->ws_plain ? e->ws_fused : e->ws_plain);
}

size_t cu_fm_conv_workspace(ft_backend *be, int N, int Cin, int S, int Cout, int k, int pad, int up2x) {
    if (!cu_enter(be)) return 0;
    cu_conv_entry *e = conv_entry(be, N, Cin, S, Cout, k, pad, up2x);
    return e ? entry_workspace(e) : 0;
}

void cu_fm_conv(ft_backend *be, void *y, const void *x, const void *w, const float *bias, const void *residual, int N,
                int Cin, int S, int Cout, int k, int pad, int up2x, void *workspace, size_t workspace_bytes) {
    cu_impl *c = cu_of(be);
    if (!cu_enter(be)) return;
    cu_conv_entry *e = conv_entry(be, N, Cin, S, Cout, k, pad, up2x);
    if (!e) return;
    if (workspace_bytes < entry_workspace(e)) {
        ft_backend_fail(be, "fm_conv: %zu bytes of workspace, the %dx%d conv %d -> %d needs %zu (fm_conv_workspace)",
                        workspace_bytes, k, k, Cin, Cout, entry_workspace(e));
        return;
    }
    const void *bias_act = cu_bias_lookup(bias);
    if (!bias_act) {
        ft_backend_fail(be, "fm_conv: the bias is not an FT_WEIGHT_BIAS (cuDNN adds it in the feature maps' type)");
        return;
    }
    const void *in = x;
    char *ws = (char *)workspace + e->up_bytes;
    size_t ws_bytes = workspace_bytes - e->up_bytes;
    if (up2x) {
        if (!CU_CHECK(be, launch_fm_upsample2x(workspace, x, N, S, Cin, c->act, c->stream))) return;
        in = workspace;
    }
    const float one = 1.0f, zero = 0.0f;
    if (e->fused != 0) {
        const float alpha2 = residual ? 1.0f : 0.0f;
        cudnnStatus_t s = cudnnConvolutionBiasActivationForward(
            c->dnn->h, &one, e->x, in, e->w, w, e->conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, ws,
            ws_bytes, &alpha2, e->y, residual ? residual : y, e->b, bias_act, c->dnn->identity, e->y, y);
        if (s == CUDNN_STATUS_SUCCESS) {
            if (e->fused < 0 && getenv("FT_GEMM_DEBUG"))
                fprintf(stderr, "conv %dx%d %d->%d on %d%s: fused bias%s\n", k, k, Cin, Cout, S, up2x ? " (2x up)" : "",
                        residual ? " + residual" : "");
            e->fused = 1;
            return;
        }
        if (s != CUDNN_STATUS_NOT_SUPPORTED || e->fused == 1) {
            DNN_CHECK(be, s);
            return;
        }
        e->fused = 0;
        if (getenv("FT_GEMM_DEBUG"))
            fprintf(stderr, "conv %dx%d %d->%d on %d%s: cuDNN refused the fused call; conv + bias add\n", k, k, Cin,
                    Cout, S, up2x ? " (2x up)" : "");
    }
    const size_t So = (size_t)(up2x ? 2 * S : S) + 2 * pad - k + 1, y_bytes = (size_t)N * So * So * Cout * 2;
    if (residual && !CU_CHECK(be, cudaMemcpyAsync(y, residual, y_bytes, cudaMemcpyDeviceToDevice, c->stream))) return;
    if (!DNN_CHECK(be, cudnnConvolutionForward(c->dnn->h, &one, e->x, in, e->w, w, e->conv, e->algo, ws, ws_bytes,
                                               residual ? &one : &zero, e->y, y)))
        return;
    DNN_CHECK(be, cudnnAddTensor(c->dnn->h, &one, e->b, bias_act, &one, e->y, y));
}

/* [cout, cin, k, k] of any dtype -> [cout, k, k, cin] act, converted on the
 * host (load time only). */
ft_status cu_upload_conv_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, int cout, int cin,
                                int k) {
    cu_impl *c = cu_of(be);
    size_t n = (size_t)cout * cin * k * k;
    if (!n) return FT_OK;
    uint16_t *stage = (uint16_t *)malloc(n * 2);
    if (!stage) {
        ft_backend_fail(be, "out of host memory converting a conv weight");
        return FT_ERR_OUT_OF_MEMORY;
    }
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int r = 0; r < k * k; r++) {
                float f = cu_host_to_f32(src, src_dtype, ((size_t)o * cin + i) * k * k + r);
                stage[((size_t)o * k * k + r) * cin + i] = cu_host_to_act_bits(f, c->act);
            }
    ft_status st = cu_upload_bytes(be, dst, stage, n * 2);
    free(stage);
    return st;
}

#else /* no cuDNN in this build: the VAE runs on the f32 NCHW ops */

int cu_dnn_create(cu_impl *c, char *err, size_t err_size) {
    (void)c;
    snprintf(err, err_size, "this build has no cuDNN");
    return 0;
}
void cu_dnn_destroy(cu_impl *c) { (void)c; }
size_t cu_fm_conv_workspace(ft_backend *be, int N, int Cin, int S, int Cout, int k, int pad, int up2x) {
    (void)N, (void)Cin, (void)S, (void)Cout, (void)k, (void)pad, (void)up2x;
    ft_backend_fail(be, "fm_conv: no cuDNN in this build");
    return 0;
}
void cu_fm_conv(ft_backend *be, void *y, const void *x, const void *w, const float *bias, const void *residual, int N,
                int Cin, int S, int Cout, int k, int pad, int up2x, void *workspace, size_t workspace_bytes) {
    (void)y, (void)x, (void)w, (void)bias, (void)residual, (void)N, (void)Cin, (void)S, (void)Cout, (void)k, (void)pad;
    (void)up2x, (void)workspace, (void)workspace_bytes;
    ft_backend_fail(be, "fm_conv: no cuDNN in this build");
}
ft_status cu_upload_conv_weight(ft_backend *be, void *dst, const void *src, ft_dtype src_dtype, int cout, int cin,
                                int k) {
    (void)dst, (void)src, (void)src_dtype, (void)cout, (void)cin, (void)k;
    ft_backend_fail(be, "conv weights in cuDNN's layout: no cuDNN in this build");
    return FT_ERR_BACKEND;
}
#endif
