/* engine/vae.c — the SD-VAE (AutoencoderKL) decoder (see vae.h and
 * /work/shared/reference/model.md §3):
 *
 *   z / scaling_factor -> post_quant_conv (1x1) -> conv_in (3x3)
 *   -> mid: resnet, attention (GroupNorm, 1 head over the H*W tokens, residual), resnet
 *   -> up_blocks[i]: layers_per_block + 1 resnets, then (i < n_blocks - 1) nearest 2x + 3x3 conv
 *   -> GroupNorm + SiLU -> conv_out (3x3).
 *
 * Feature maps rotate through three buffers carved from the caller's scratch,
 * with a packed-qkv region for the attention. Nothing is allocated during
 * decode. Two op paths:
 *  - f32 NCHW (every backend): conv2d, group_norm, add; the attention's
 *    token-major operands (act) made by transpose + cast;
 *  - act NHWC ("fm" ops, backends that have them: CUDA with cuDNN): the maps
 *    stay [N, S, S, C] act from the first conv to the last, convolutions
 *    carry their bias and the resnet's residual add, the attention reads the
 *    maps as token rows directly, and each conv's workspace (chosen when the
 *    plan is made) is carved from the scratch too. */
#include "vae.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAE_GN_EPS 1e-6f
#define VAE_ALIGN 256

typedef struct {
    int cin, cout;
    void *norm1_w, *norm1_b, *conv1_w, *conv1_b, *norm2_w, *norm2_b, *conv2_w, *conv2_b;
    void *short_w, *short_b; /* NULL when cin == cout */
} vae_resnet;

typedef struct {
    int cin, cout; /* channels entering / leaving the block */
    vae_resnet *resnets;
    void *up_w, *up_b; /* upsampler conv; NULL in the last block */
} vae_up_block;

struct vae_model {
    vae_config cfg;
    void *arena;
    size_t n_params;
    void *pq_w, *pq_b, *in_w, *in_b;
    vae_resnet mid[2];
    void *attn_gn_w, *attn_gn_b, *qkv_w, *qkv_b, *attn_out_w, *attn_out_b;
    vae_up_block up[8];
    vae_resnet *resnet_store; /* n_blocks * (layers_per_block + 1) */
    void *norm_out_w, *norm_out_b, *out_w, *out_b;
};

/* ---- metadata ---- */

static ft_status parse_channels(const st_file *f, int groups, vae_config *c, ft_err *err) {
    const char *key = "block_out_channels";
    const char *v = st_meta(f, key);
    if (!v) return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' is missing", f->path, key);
    const char *p = v;
    int n = 0;
    for (;;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 1 || x > 8192)
            return ft_fail(err, FT_ERR_FORMAT,
                           "%s: metadata '%s' = '%s' is not a comma-separated list of channel counts in [1, 8192]",
                           f->path, key, v);
        if (n == 8)
            return ft_fail(err, FT_ERR_FORMAT, "%s: metadata '%s' = '%s' has more than 8 entries", f->path, key, v);
        if (x % groups)
            return ft_fail(err, FT_ERR_FORMAT,
                           "%s: metadata '%s' = '%s': %ld channels are not divisible by norm_num_groups %d", f->path,
                           key, v, x, groups);
        c->block_out_channels[n++] = (int)x;
        p = end;
        while (*p == ' ') p++;
        if (!*p) break;
        if (*p != ',')
            return ft_fail(err, FT_ERR_FORMAT,
                           "%s: metadata '%s' = '%s' is not a comma-separated list of channel counts in [1, 8192]",
                           f->path, key, v);
        p++;
    }
    c->n_blocks = n;
    return FT_OK;
}

static ft_status vae_config_read(const st_file *f, vae_config *c, ft_err *err) {
    memset(c, 0, sizeof *c);
    ft_status st = meta_check_model(f, "vae", "sd-vae-decoder", err);
    if (st != FT_OK) return st;
    double sf;
    if ((st = meta_int(f, "latent_channels", 1, 64, &c->latent_channels, err)) ||
        (st = meta_int(f, "out_channels", 1, 64, &c->out_channels, err)) ||
        (st = meta_int(f, "layers_per_block", 0, 64, &c->layers_per_block, err)) ||
        (st = meta_int(f, "norm_num_groups", 1, 8192, &c->groups, err)) ||
        (st = parse_channels(f, c->groups, c, err)) || (st = meta_double(f, "scaling_factor", &sf, err)))
        return st;
    if (c->out_channels != 1 && c->out_channels != 3)
        return ft_fail(err, FT_ERR_FORMAT,
                       "%s: metadata 'out_channels' = %d is not supported: images need 3 (RGB) or 1 (grey) channels",
                       f->path, c->out_channels);
    if (!(sf >= 1e-30 && sf <= 1e30))
        return ft_fail(err, FT_ERR_FORMAT, "%s: metadata 'scaling_factor' = %g is out of range", f->path, sf);
    c->scaling_factor = (float)sf;
    return FT_OK;
}

/* ---- weights ---- */

static ft_status add_conv(ft_wspec_list *l, void **w, void **b, int64_t cout, int64_t cin, int64_t k,
                          const char *name) {
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    ft_status st = wspec_add(l, w, FT_WEIGHT_CONV, 4, ws, "%s.weight", name);
    if (st == FT_OK) st = wspec_add(l, b, FT_WEIGHT_BIAS, 1, bs, "%s.bias", name);
    return st;
}

static ft_status add_norm(ft_wspec_list *l, void **w, void **b, int64_t c, const char *name) {
    int64_t s[1] = {c};
    ft_status st = wspec_add(l, w, FT_WEIGHT_VECTOR, 1, s, "%s.weight", name);
    if (st == FT_OK) st = wspec_add(l, b, FT_WEIGHT_VECTOR, 1, s, "%s.bias", name);
    return st;
}

static ft_status add_resnet(ft_wspec_list *l, vae_resnet *r, int cin, int cout, const char *prefix) {
    char name[128];
    ft_status st = FT_OK;
    r->cin = cin;
    r->cout = cout;
#define SUB(s) (snprintf(name, sizeof name, "%s.%s", prefix, s), name)
    if (st == FT_OK) st = add_norm(l, &r->norm1_w, &r->norm1_b, cin, SUB("norm1"));
    if (st == FT_OK) st = add_conv(l, &r->conv1_w, &r->conv1_b, cout, cin, 3, SUB("conv1"));
    if (st == FT_OK) st = add_norm(l, &r->norm2_w, &r->norm2_b, cout, SUB("norm2"));
    if (st == FT_OK) st = add_conv(l, &r->conv2_w, &r->conv2_b, cout, cout, 3, SUB("conv2"));
    if (st == FT_OK && cin != cout) st = add_conv(l, &r->short_w, &r->short_b, cout, cin, 1, SUB("conv_shortcut"));
#undef SUB
    return st;
}

static ft_status build_specs(vae_model *m, ft_wspec_list *l) {
    const vae_config *c = &m->cfg;
    int64_t L = c->latent_channels;
    int top = c->block_out_channels[c->n_blocks - 1];
    int64_t C = top;
    ft_status st = add_conv(l, &m->pq_w, &m->pq_b, L, L, 1, "post_quant_conv");
    if (st == FT_OK) st = add_conv(l, &m->in_w, &m->in_b, C, L, 3, "decoder.conv_in");
    if (st == FT_OK) st = add_resnet(l, &m->mid[0], top, top, "decoder.mid_block.resnets.0");
    const char *ap = "decoder.mid_block.attentions.0";
    char name[128];
    if (st == FT_OK) {
        snprintf(name, sizeof name, "%s.group_norm", ap);
        st = add_norm(l, &m->attn_gn_w, &m->attn_gn_b, C, name);
    }
    static const char *qkv[3] = {"to_q", "to_k", "to_v"};
    int64_t ws[2] = {C, C}, bs[1] = {C};
    for (int i = 0; i < 3 && st == FT_OK; i++) {
        size_t wn = (size_t)(3 * C * C), bn = (size_t)(3 * C);
        st = wspec_add_part(l, &m->qkv_w, FT_WEIGHT_MATRIX, i == 0 ? wn : 0, (size_t)i * C * C, 2, ws, "%s.%s.weight",
                            ap, qkv[i]);
        if (st == FT_OK)
            st = wspec_add_part(l, &m->qkv_b, FT_WEIGHT_VECTOR, i == 0 ? bn : 0, (size_t)i * C, 1, bs, "%s.%s.bias",
                                ap, qkv[i]);
    }
    if (st == FT_OK) st = wspec_add(l, &m->attn_out_w, FT_WEIGHT_MATRIX, 2, ws, "%s.to_out.0.weight", ap);
    if (st == FT_OK) st = wspec_add(l, &m->attn_out_b, FT_WEIGHT_VECTOR, 1, bs, "%s.to_out.0.bias", ap);
    if (st == FT_OK) st = add_resnet(l, &m->mid[1], top, top, "decoder.mid_block.resnets.1");
    int prev = top, R = c->layers_per_block + 1;
    for (int i = 0; i < c->n_blocks && st == FT_OK; i++) {
        vae_up_block *b = &m->up[i];
        int out = c->block_out_channels[c->n_blocks - 1 - i];
        b->cin = prev;
        b->cout = out;
        b->resnets = m->resnet_store + (size_t)i * R;
        for (int j = 0; j < R && st == FT_OK; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
            st = add_resnet(l, &b->resnets[j], j == 0 ? prev : out, out, name);
        }
        if (st == FT_OK && i < c->n_blocks - 1) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            st = add_conv(l, &b->up_w, &b->up_b, out, out, 3, name);
        }
        prev = out;
    }
    if (st == FT_OK) st = add_norm(l, &m->norm_out_w, &m->norm_out_b, prev, "decoder.conv_norm_out");
    if (st == FT_OK) st = add_conv(l, &m->out_w, &m->out_b, c->out_channels, prev, 3, "decoder.conv_out");
    return st;
}

/* The VAE's act scope: its weights, plans and ops use f16 as the act type on backends that have one
 * (backend.h, set_act_dtype: bf16 feature maps miss the uint8 accuracy the decode needs). */
static ft_dtype vae_act_begin(ft_backend *be) {
    return be->set_act_dtype ? be->set_act_dtype(be, FT_DTYPE_F16) : FT_DTYPE_F32;
}

static void vae_act_end(ft_backend *be, ft_dtype prev) {
    if (be->set_act_dtype) be->set_act_dtype(be, prev);
}

ft_status vae_load(ft_backend *be, const st_file *f, vae_model **out, ft_load_progress progress, void *user,
                   ft_err *err) {
    *out = NULL;
    vae_model *m = calloc(1, sizeof *m);
    if (!m) return ft_fail(err, FT_ERR_OUT_OF_MEMORY, "out of memory");
    ft_status st = vae_config_read(f, &m->cfg, err);
    if (st != FT_OK) {
        free(m);
        return st;
    }
    m->resnet_store = calloc((size_t)m->cfg.n_blocks * (m->cfg.layers_per_block + 1), sizeof *m->resnet_store);
    if (!m->resnet_store) {
        free(m);
        return ft_fail(err, FT_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ft_wspec_list specs = {0};
    st = build_specs(m, &specs);
    if (st != FT_OK) st = ft_fail(err, st, "out of memory");
    else {
        ft_dtype prev = vae_act_begin(be);
        st = weights_load(be, f, &specs, &m->arena, &m->n_params, progress, user, err);
        vae_act_end(be, prev);
    }
    wspec_free(&specs);
    if (st != FT_OK) {
        free(m->resnet_store);
        free(m);
        return st;
    }
    *out = m;
    return FT_OK;
}

void vae_free(ft_backend *be, vae_model *m) {
    if (!m) return;
    if (m->arena) be->free(be, m->arena);
    free(m->resnet_store);
    free(m);
}

const vae_config *vae_get_config(const vae_model *m) { return m ? &m->cfg : NULL; }

size_t vae_n_params(const vae_model *m) { return m ? m->n_params : 0; }

int vae_image_size(const vae_model *m, int latent_size) { return latent_size << (m->cfg.n_blocks - 1); }

/* ---- scratch ---- */

typedef struct {
    float *p[3];  /* feature maps, `feat` floats each (fm path: act NHWC in the same room) */
    void *qkv;    /* packed attention qkv (act) */
    void *ws;     /* fm path: the largest conv workspace */
    size_t ws_bytes;
} vae_bufs;

/* Largest per-image feature map (floats) of any stage. */
static size_t max_feature(const vae_config *c, int s) {
    size_t side = (size_t)s, best = (size_t)c->latent_channels * side * side;
    size_t top = (size_t)c->block_out_channels[c->n_blocks - 1];
    if (top * side * side > best) best = top * side * side;
    for (int i = 0; i < c->n_blocks; i++) {
        size_t ch = (size_t)c->block_out_channels[c->n_blocks - 1 - i];
        if (ch * side * side > best) best = ch * side * side;
        if (i < c->n_blocks - 1) side *= 2; /* the upsampler output at the new side */
        if (ch * side * side > best) best = ch * side * side;
    }
    return best;
}

static size_t align_up(size_t b) { return (b + VAE_ALIGN - 1) / VAE_ALIGN * VAE_ALIGN; }

/* Calls fn for every convolution of the decoder (shapes as decode runs them). */
static void for_each_conv(const vae_model *m, int n, int s, void (*fn)(void *user, int n, int cin, int S, int cout,
                                                                        int k, int pad, int up2x),
                          void *user) {
    const vae_config *c = &m->cfg;
    int top = c->block_out_channels[c->n_blocks - 1], S = s;
    fn(user, n, c->latent_channels, S, c->latent_channels, 1, 0, 0);
    fn(user, n, c->latent_channels, S, top, 3, 1, 0);
    for (int r = 0; r < 4; r++) fn(user, n, top, S, top, 3, 1, 0); /* the two mid resnets, no shortcut */
    for (int i = 0; i < c->n_blocks; i++) {
        const vae_up_block *u = &m->up[i];
        for (int j = 0; j <= c->layers_per_block; j++) {
            const vae_resnet *r = &u->resnets[j];
            fn(user, n, r->cin, S, r->cout, 3, 1, 0);
            fn(user, n, r->cout, S, r->cout, 3, 1, 0);
            if (r->short_w) fn(user, n, r->cin, S, r->cout, 1, 0, 0);
        }
        if (u->up_w) {
            fn(user, n, u->cout, S, u->cout, 3, 1, 1);
            S *= 2;
        }
    }
    fn(user, n, m->up[c->n_blocks - 1].cout, S, c->out_channels, 3, 1, 0);
}

typedef struct {
    ft_backend *be;
    size_t max;
} conv_ws;

static void max_conv_workspace(void *user, int n, int cin, int S, int cout, int k, int pad, int up2x) {
    conv_ws *w = user;
    size_t b = w->be->fm_conv_workspace(w->be, n, cin, S, cout, k, pad, up2x);
    if (b > w->max) w->max = b;
}

/* Carves the buffers out of base (base may be NULL to only measure). */
static size_t carve(ft_backend *be, const vae_model *m, size_t act_size, int n, int s, void *base, vae_bufs *b) {
    const vae_config *c = &m->cfg;
    size_t feat = align_up((size_t)n * max_feature(c, s) * sizeof(float));
    size_t qkv = align_up((size_t)n * 3 * c->block_out_channels[c->n_blocks - 1] * s * s * act_size);
    conv_ws ws = {be, 0};
    if (be->fm_conv) for_each_conv(m, n, s, max_conv_workspace, &ws);
    ws.max = align_up(ws.max);
    char *p = base;
    if (b) {
        for (int i = 0; i < 3; i++) b->p[i] = (float *)(p + i * feat);
        b->qkv = p + 3 * feat;
        b->ws = ws.max ? p + 3 * feat + qkv : NULL;
        b->ws_bytes = ws.max;
    }
    return 3 * feat + qkv + ws.max;
}

size_t vae_scratch_bytes(ft_backend *be, const vae_model *m, int n, int latent_size) {
    /* act is at most 4 bytes (f32 on the CPU, bf16/fp16 on GPUs); the conv workspaces are sized for f16 maps */
    ft_dtype prev = vae_act_begin(be);
    size_t bytes = carve(be, m, sizeof(float), n, latent_size, NULL, NULL);
    vae_act_end(be, prev);
    return bytes;
}

/* ---- forward ---- */

/* Returns the buffer index holding the output; x is the input's index. */
static int resnet_fwd(ft_backend *be, const vae_model *m, const vae_resnet *r, const vae_bufs *b, int x, int n,
                      int S) {
    int a = (x + 1) % 3, t = (x + 2) % 3, G = m->cfg.groups, HW = S * S;
    size_t out_n = (size_t)n * r->cout * HW;
    be->group_norm(be, b->p[a], b->p[x], r->norm1_w, r->norm1_b, n, r->cin, HW, G, VAE_GN_EPS, 1);
    be->conv2d(be, b->p[t], b->p[a], r->conv1_w, r->conv1_b, n, r->cin, S, r->cout, 3, 1, 0);
    be->group_norm(be, b->p[a], b->p[t], r->norm2_w, r->norm2_b, n, r->cout, HW, G, VAE_GN_EPS, 1);
    be->conv2d(be, b->p[t], b->p[a], r->conv2_w, r->conv2_b, n, r->cout, S, r->cout, 3, 1, 0);
    if (r->short_w) {
        be->conv2d(be, b->p[a], b->p[x], r->short_w, r->short_b, n, r->cin, S, r->cout, 1, 0, 0);
        be->add(be, b->p[x], b->p[a], b->p[t], out_n);
        return x;
    }
    be->add(be, b->p[a], b->p[x], b->p[t], out_n);
    return a;
}

/* Mid-block self-attention (1 head over the S*S tokens) with residual. */
static int attention_fwd(ft_backend *be, const vae_model *m, const vae_bufs *b, int x, int n, int S) {
    int a = (x + 1) % 3, t = (x + 2) % 3;
    int C = m->cfg.block_out_channels[m->cfg.n_blocks - 1], T = S * S;
    size_t numel = (size_t)n * C * T;
    be->group_norm(be, b->p[a], b->p[x], m->attn_gn_w, m->attn_gn_b, n, C, T, m->cfg.groups, VAE_GN_EPS, 0);
    be->transpose(be, b->p[t], b->p[a], n, C, T);         /* [n, T, C] f32 */
    be->cast(be, b->p[a], FT_BUF_ACT, b->p[t], FT_BUF_F32, numel);
    be->linear(be, b->qkv, FT_BUF_ACT, b->p[a], m->qkv_w, m->qkv_b, n * T, 3 * C, C, FT_EPI_NONE);
    be->attention(be, b->p[t], b->qkv, n, T, 1, C);       /* act [n, T, C] */
    be->linear(be, b->p[a], FT_BUF_F32, b->p[t], m->attn_out_w, m->attn_out_b, n * T, C, C, FT_EPI_NONE);
    be->transpose(be, b->p[t], b->p[a], n, T, C);         /* back to [n, C, T] */
    be->add(be, b->p[a], b->p[x], b->p[t], numel);
    return a;
}

/* ---- forward on act NHWC feature maps (backends with fm ops) ---- */

static void fm_conv(ft_backend *be, const vae_bufs *b, void *y, const void *x, const void *w, const void *bias,
                    const void *residual, int n, int cin, int S, int cout, int k, int pad, int up2x) {
    be->fm_conv(be, y, x, w, bias, residual, n, cin, S, cout, k, pad, up2x, b->ws, b->ws_bytes);
}

static int resnet_fm(ft_backend *be, const vae_model *m, const vae_resnet *r, const vae_bufs *b, int x, int n, int S) {
    int a = (x + 1) % 3, t = (x + 2) % 3, G = m->cfg.groups, HW = S * S;
    be->fm_group_norm(be, b->p[a], b->p[x], r->norm1_w, r->norm1_b, n, r->cin, HW, G, VAE_GN_EPS, 1);
    fm_conv(be, b, b->p[t], b->p[a], r->conv1_w, r->conv1_b, NULL, n, r->cin, S, r->cout, 3, 1, 0);
    be->fm_group_norm(be, b->p[a], b->p[t], r->norm2_w, r->norm2_b, n, r->cout, HW, G, VAE_GN_EPS, 1);
    if (r->short_w) { /* out = conv2(h) + shortcut(x), the add inside the conv */
        fm_conv(be, b, b->p[t], b->p[x], r->short_w, r->short_b, NULL, n, r->cin, S, r->cout, 1, 0, 0);
        fm_conv(be, b, b->p[x], b->p[a], r->conv2_w, r->conv2_b, b->p[t], n, r->cout, S, r->cout, 3, 1, 0);
        return x;
    }
    fm_conv(be, b, b->p[t], b->p[a], r->conv2_w, r->conv2_b, b->p[x], n, r->cout, S, r->cout, 3, 1, 0);
    return t;
}

static int attention_fm(ft_backend *be, const vae_model *m, const vae_bufs *b, int x, int n, int S) {
    int a = (x + 1) % 3, t = (x + 2) % 3;
    int C = m->cfg.block_out_channels[m->cfg.n_blocks - 1], T = S * S;
    be->fm_group_norm(be, b->p[a], b->p[x], m->attn_gn_w, m->attn_gn_b, n, C, T, m->cfg.groups, VAE_GN_EPS, 0);
    /* NHWC maps are already token rows [n * T, C] */
    be->linear(be, b->qkv, FT_BUF_ACT, b->p[a], m->qkv_w, m->qkv_b, n * T, 3 * C, C, FT_EPI_NONE);
    be->attention(be, b->p[t], b->qkv, n, T, 1, C);
    be->linear(be, b->p[a], FT_BUF_ACT, b->p[t], m->attn_out_w, m->attn_out_b, n * T, C, C, FT_EPI_NONE);
    be->fm_add(be, b->p[a], b->p[a], b->p[x], (size_t)n * C * T);
    return a;
}

static void decode_fm(ft_backend *be, const vae_model *m, const vae_bufs *b, const float *latents, int n, int S,
                      float *img) {
    const vae_config *c = &m->cfg;
    int L = c->latent_channels, top = c->block_out_channels[c->n_blocks - 1], G = c->groups;
    be->fm_from_nchw(be, b->p[1], latents, n, L, S, 1.0f / c->scaling_factor);
    fm_conv(be, b, b->p[2], b->p[1], m->pq_w, m->pq_b, NULL, n, L, S, L, 1, 0, 0);
    fm_conv(be, b, b->p[0], b->p[2], m->in_w, m->in_b, NULL, n, L, S, top, 3, 1, 0);
    int cur = resnet_fm(be, m, &m->mid[0], b, 0, n, S);
    cur = attention_fm(be, m, b, cur, n, S);
    cur = resnet_fm(be, m, &m->mid[1], b, cur, n, S);
    for (int i = 0; i < c->n_blocks; i++) {
        const vae_up_block *u = &m->up[i];
        for (int j = 0; j <= c->layers_per_block; j++) cur = resnet_fm(be, m, &u->resnets[j], b, cur, n, S);
        if (u->up_w) {
            int o = (cur + 1) % 3;
            fm_conv(be, b, b->p[o], b->p[cur], u->up_w, u->up_b, NULL, n, u->cout, S, u->cout, 3, 1, 1);
            cur = o;
            S *= 2;
        }
    }
    int C = m->up[c->n_blocks - 1].cout, o = (cur + 1) % 3, f = (cur + 2) % 3;
    be->fm_group_norm(be, b->p[o], b->p[cur], m->norm_out_w, m->norm_out_b, n, C, S * S, G, VAE_GN_EPS, 1);
    fm_conv(be, b, b->p[f], b->p[o], m->out_w, m->out_b, NULL, n, C, S, c->out_channels, 3, 1, 0);
    be->fm_to_nchw(be, img, b->p[f], n, c->out_channels, S);
}

/* The f32 NCHW path (the CPU, and CUDA without cuDNN). */
static void decode_nchw(ft_backend *be, const vae_model *m, const vae_bufs *b, const float *latents, int n,
                        int latent_size, float *img) {
    const vae_config *c = &m->cfg;
    int S = latent_size, L = c->latent_channels, G = c->groups;
    int top = c->block_out_channels[c->n_blocks - 1];
    /* z / scaling_factor as a reciprocal multiply (within 1 ulp of torch's division) */
    be->scale(be, b->p[1], latents, 1.0f / c->scaling_factor, (size_t)n * L * S * S);
    be->conv2d(be, b->p[2], b->p[1], m->pq_w, m->pq_b, n, L, S, L, 1, 0, 0);
    be->conv2d(be, b->p[0], b->p[2], m->in_w, m->in_b, n, L, S, top, 3, 1, 0);
    int cur = 0;
    cur = resnet_fwd(be, m, &m->mid[0], b, cur, n, S);
    cur = attention_fwd(be, m, b, cur, n, S);
    cur = resnet_fwd(be, m, &m->mid[1], b, cur, n, S);
    for (int i = 0; i < c->n_blocks; i++) {
        const vae_up_block *u = &m->up[i];
        for (int j = 0; j <= c->layers_per_block; j++) cur = resnet_fwd(be, m, &u->resnets[j], b, cur, n, S);
        if (u->up_w) {
            int o = (cur + 1) % 3;
            be->conv2d(be, b->p[o], b->p[cur], u->up_w, u->up_b, n, u->cout, S, u->cout, 3, 1, 1);
            cur = o;
            S *= 2;
        }
    }
    int C = m->up[c->n_blocks - 1].cout, o = (cur + 1) % 3;
    be->group_norm(be, b->p[o], b->p[cur], m->norm_out_w, m->norm_out_b, n, C, S * S, G, VAE_GN_EPS, 1);
    be->conv2d(be, img, b->p[o], m->out_w, m->out_b, n, C, S, c->out_channels, 3, 1, 0);
}

void vae_decode(ft_backend *be, const vae_model *m, void *scratch, const float *latents, int n, int latent_size,
                float *img) {
    vae_bufs b;
    ft_dtype prev = vae_act_begin(be);
    carve(be, m, be->act_size, n, latent_size, scratch, &b);
    if (be->fm_conv) decode_fm(be, m, &b, latents, n, latent_size, img);
    else decode_nchw(be, m, &b, latents, n, latent_size, img);
    vae_act_end(be, prev);
}
