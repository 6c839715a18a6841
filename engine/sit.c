/* engine/sit.c — SiT/DiT transformer + FlowTurbo refiner (see sit.h). */
#include "sit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ft_status sit_config_read(const st_file *f, ft_role role, sit_config *c, ft_err *err) {
    memset(c, 0, sizeof *c);
    ft_status st = meta_check_model(f, role == FT_ROLE_REFINER ? "refiner" : "predictor", "sit", err);
    if (st != FT_OK) return st;
    c->is_refiner = role == FT_ROLE_REFINER;
    double ratio;
    if ((st = meta_int(f, "input_size", 1, 1024, &c->input_size, err)) ||
        (st = meta_int(f, "in_channels", 1, 64, &c->in_channels, err)) ||
        (st = meta_int(f, "out_channels", 1, 128, &c->out_channels, err)) ||
        (st = meta_int(f, "patch_size", 1, 64, &c->patch, err)) ||
        (st = meta_int(f, "hidden_size", 1, 16384, &c->hidden, err)) ||
        (st = meta_int(f, "depth", 1, 512, &c->depth, err)) ||
        (st = meta_int(f, "num_heads", 1, 1024, &c->heads, err)) ||
        (st = meta_double(f, "mlp_ratio", &ratio, err)) ||
        (st = meta_int(f, "num_classes", 1, 1000000, &c->num_classes, err)) ||
        (st = meta_bool(f, "learn_sigma", &c->learn_sigma, err)) ||
        (st = meta_int(f, "guided_channels", 0, 64, &c->guided_channels, err)))
        return st;
    if (c->input_size % c->patch)
        return ft_fail(err, FT_ERR_FORMAT, "%s: input_size %d is not a multiple of patch_size %d", f->path,
                       c->input_size, c->patch);
    if (c->hidden % c->heads)
        return ft_fail(err, FT_ERR_FORMAT, "%s: hidden_size %d is not divisible by num_heads %d", f->path, c->hidden,
                       c->heads);
    if (c->out_channels != (c->learn_sigma ? 2 : 1) * c->in_channels)
        return ft_fail(err, FT_ERR_FORMAT, "%s: out_channels %d does not match in_channels %d with learn_sigma %s",
                       f->path, c->out_channels, c->in_channels, c->learn_sigma ? "true" : "false");
    if (c->guided_channels > c->in_channels)
        return ft_fail(err, FT_ERR_FORMAT, "%s: guided_channels %d exceeds in_channels %d", f->path,
                       c->guided_channels, c->in_channels);
    const char *kind = c->is_refiner ? st_meta(f, "refiner_kind") : NULL;
    if (kind && strcmp(kind, "released") && strcmp(kind, "guided"))
        return ft_fail(err, FT_ERR_FORMAT, "%s: unknown refiner_kind '%s' (expected 'released' or 'guided')", f->path,
                       kind);
    c->guided_refiner = kind && !strcmp(kind, "guided");
    double mlp = c->hidden * ratio;
    if (ratio > 64 || mlp < 1)
        return ft_fail(err, FT_ERR_FORMAT, "%s: mlp_ratio %g is out of range", f->path, ratio);
    c->mlp_ratio = (float)ratio;
    c->mlp_hidden = (int)mlp; /* timm: int(hidden_size * mlp_ratio) */
    int g = c->input_size / c->patch;
    c->tokens = g * g;
    if (c->tokens > 65536)
        return ft_fail(err, FT_ERR_FORMAT, "%s: %d tokens is more than this engine supports (65536)", f->path,
                       c->tokens);
    c->head_dim = c->hidden / c->heads;
    c->embed_channels = c->is_refiner ? 2 * c->in_channels : c->in_channels;
    c->final_out = c->patch * c->patch * c->out_channels;
    c->mod_width = c->depth * 6 * c->hidden + 2 * c->hidden;
    return FT_OK;
}

static ft_status build_specs(sit_model *m, ft_wspec_list *l) {
    const sit_config *c = &m->cfg;
    int64_t D = c->hidden, F = c->mlp_hidden, p = c->patch;
    size_t mod_rows = (size_t)c->mod_width;
    ft_status st = FT_OK;
#define ADD(slot, kind, nd, ...)                                                         \
    do {                                                                                 \
        int64_t shp_[] = __VA_ARGS__;                                                    \
        if (st == FT_OK) st = wspec_add(l, (void **)(slot), kind, nd, shp_, NAME_ARGS); \
    } while (0)
#define NAME_ARGS "%s", name
    const char *name;
    name = "pos_embed";
    ADD(&m->pos, FT_WEIGHT_VECTOR, 3, {1, c->tokens, D});
    name = "x_embedder.proj.weight";
    ADD(&m->patch_w, FT_WEIGHT_MATRIX, 4, {D, c->embed_channels, p, p});
    name = "x_embedder.proj.bias";
    ADD(&m->patch_b, FT_WEIGHT_VECTOR, 1, {D});
    name = "t_embedder.mlp.0.weight";
    ADD(&m->t_w0, FT_WEIGHT_MATRIX, 2, {D, SIT_FREQ_DIM});
    name = "t_embedder.mlp.0.bias";
    ADD(&m->t_b0, FT_WEIGHT_BIAS, 1, {D});
    name = "t_embedder.mlp.2.weight";
    ADD(&m->t_w2, FT_WEIGHT_MATRIX, 2, {D, D});
    name = "t_embedder.mlp.2.bias";
    ADD(&m->t_b2, FT_WEIGHT_BIAS, 1, {D});
    name = "y_embedder.embedding_table.weight";
    ADD(&m->y_table, FT_WEIGHT_VECTOR, 2, {c->num_classes + 1, D});
    name = "final_layer.linear.weight";
    ADD(&m->final_w, FT_WEIGHT_MATRIX, 2, {c->final_out, D});
    name = "final_layer.linear.bias";
    ADD(&m->final_b, FT_WEIGHT_BIAS, 1, {c->final_out});
#undef NAME_ARGS
#define NAME_ARGS "blocks.%d.%s", b, name
    for (int b = 0; b < c->depth; b++) {
        sit_block_weights *bw = &m->blocks[b];
        name = "attn.qkv.weight";
        ADD(&bw->qkv_w, FT_WEIGHT_MATRIX, 2, {3 * D, D});
        name = "attn.qkv.bias";
        ADD(&bw->qkv_b, FT_WEIGHT_BIAS, 1, {3 * D});
        name = "attn.proj.weight";
        ADD(&bw->proj_w, FT_WEIGHT_MATRIX, 2, {D, D});
        name = "attn.proj.bias";
        ADD(&bw->proj_b, FT_WEIGHT_BIAS, 1, {D});
        name = "mlp.fc1.weight";
        ADD(&bw->fc1_w, FT_WEIGHT_MATRIX, 2, {F, D});
        name = "mlp.fc1.bias";
        ADD(&bw->fc1_b, FT_WEIGHT_BIAS, 1, {F});
        name = "mlp.fc2.weight";
        ADD(&bw->fc2_w, FT_WEIGHT_MATRIX, 2, {D, F});
        name = "mlp.fc2.bias";
        ADD(&bw->fc2_b, FT_WEIGHT_BIAS, 1, {D});
    }
#undef NAME_ARGS
#undef ADD
    /* adaLN of every block, then the final layer's, stacked into one matrix */
    for (int b = 0; b <= c->depth && st == FT_OK; b++) {
        int64_t rows = b < c->depth ? 6 * D : 2 * D;
        size_t row0 = (size_t)b * 6 * (size_t)D;
        int64_t wshape[2] = {rows, D}, bshape[1] = {rows};
        char prefix[64];
        if (b < c->depth) snprintf(prefix, sizeof prefix, "blocks.%d", b);
        else snprintf(prefix, sizeof prefix, "final_layer");
        st = wspec_add_part(l, &m->ada_w, FT_WEIGHT_MATRIX, b == 0 ? mod_rows * D : 0, row0 * D, 2, wshape,
                            "%s.adaLN_modulation.1.weight", prefix);
        if (st == FT_OK)
            st = wspec_add_part(l, (void **)&m->ada_b, FT_WEIGHT_VECTOR, b == 0 ? mod_rows : 0, row0, 1, bshape,
                                "%s.adaLN_modulation.1.bias", prefix);
    }
    return st;
}

/* Optional "class_names" metadata: num_classes comma-separated names. */
static ft_status read_class_names(const st_file *f, sit_model *m, ft_err *err) {
    const char *names = st_meta(f, "class_names");
    if (!names) return FT_OK;
    size_t len = strlen(names);
    m->class_names = malloc(len + 1);
    m->class_name = calloc((size_t)m->cfg.num_classes, sizeof *m->class_name);
    if (!m->class_names || !m->class_name) return ft_fail(err, FT_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(m->class_names, names, len + 1);
    int n = 0;
    for (char *p = m->class_names, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = 0;
        if (n < m->cfg.num_classes) m->class_name[n] = p;
        n++;
    }
    if (n != m->cfg.num_classes)
        return ft_fail(err, FT_ERR_FORMAT, "%s: metadata 'class_names' lists %d names for %d classes", f->path, n,
                       m->cfg.num_classes);
    return FT_OK;
}

ft_status sit_load(ft_backend *be, const st_file *f, ft_role role, sit_model *m, ft_load_progress progress,
                   void *user, ft_err *err) {
    memset(m, 0, sizeof *m);
    ft_status st = sit_config_read(f, role, &m->cfg, err);
    if (st == FT_OK) st = read_class_names(f, m, err);
    if (st != FT_OK) {
        free(m->class_names);
        free(m->class_name);
        memset(m, 0, sizeof *m);
        return st;
    }
    const char *src = st_meta(f, "source");
    snprintf(m->source, sizeof m->source, "%s", src ? src : f->path);
    m->blocks = calloc((size_t)m->cfg.depth, sizeof *m->blocks);
    if (!m->blocks) st = ft_fail(err, FT_ERR_OUT_OF_MEMORY, "out of memory");
    ft_wspec_list specs = {0};
    if (st == FT_OK && (st = build_specs(m, &specs)) != FT_OK) st = ft_fail(err, st, "out of memory");
    if (st == FT_OK) st = weights_load(be, f, &specs, &m->arena, &m->n_params, progress, user, err);
    wspec_free(&specs);
    if (st != FT_OK) {
        free(m->blocks);
        free(m->class_names);
        free(m->class_name);
        memset(m, 0, sizeof *m);
    }
    return st;
}

void sit_free(ft_backend *be, sit_model *m) {
    if (!m) return;
    if (m->arena) be->free(be, m->arena);
    free(m->blocks);
    free(m->class_names);
    free(m->class_name);
    memset(m, 0, sizeof *m);
}

void sit_forward_sizes(const sit_config *c, int N, size_t *tokens, size_t *h, size_t *qkv, size_t *fc1,
                       size_t *fo) {
    size_t rows = (size_t)N * c->tokens;
    *tokens = rows * c->hidden;
    *h = rows * c->hidden;
    *qkv = rows * 3 * c->hidden;
    *fc1 = rows * c->mlp_hidden;
    *fo = rows * c->final_out;
}

void sit_cond_sizes(const sit_config *c, int R, size_t *freq, size_t *hidden) {
    *freq = (size_t)R * SIT_FREQ_DIM;
    *hidden = (size_t)R * c->hidden;
}

ft_status sit_scratch_alloc(ft_backend *be, const sit_config *c, int N, int R, sit_scratch *s, sit_cond_scratch *cs,
                            void **block) {
    size_t tok, h, qkv, fc1, fo, freq, hid, F = sizeof(float), A = be->act_size;
    sit_forward_sizes(c, N, &tok, &h, &qkv, &fc1, &fo);
    sit_cond_sizes(c, R, &freq, &hid);
    size_t bytes[12] = {tok * F, h * A, qkv * A, h * A, h * A, fc1 * A, fo * A, freq * F, hid * F, freq * A, hid * A, hid * A};
    size_t total = 0;
    for (int i = 0; i < 12; i++) total += (bytes[i] + 255) & ~(size_t)255;
    ft_status st = be->alloc(be, total, block);
    if (st != FT_OK) return st;
    void *p[12];
    char *cur = *block;
    for (int i = 0; i < 12; i++, cur += (bytes[i - 1] + 255) & ~(size_t)255) p[i] = cur;
    *s = (sit_scratch){p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
    *cs = (sit_cond_scratch){p[7], p[8], p[9], p[10], p[11]};
    return FT_OK;
}

void sit_condition(ft_backend *be, const sit_model *m, const sit_cond_scratch *s, const float *t,
                   const int32_t *labels, int R, float *mod) {
    sit_condition_table(be, m, s, t, m->y_table, labels, R, mod);
}

void sit_condition_table(ft_backend *be, const sit_model *m, const sit_cond_scratch *s, const float *t,
                         const float *y_table, const int32_t *labels, int R, float *mod) {
    const sit_config *c = &m->cfg;
    int D = c->hidden;
    be->timestep_embedding(be, s->freq, t, R, SIT_FREQ_DIM);
    be->cast(be, s->freq_act, FT_BUF_ACT, s->freq, FT_BUF_F32, (size_t)R * SIT_FREQ_DIM);
    be->linear(be, s->t_hidden, FT_BUF_ACT, s->freq_act, m->t_w0, m->t_b0, R, D, SIT_FREQ_DIM, FT_EPI_SILU);
    be->linear(be, s->temb, FT_BUF_F32, s->t_hidden, m->t_w2, m->t_b2, R, D, D, FT_EPI_NONE);
    be->embedding_lookup(be, s->temb, y_table, labels, R, D, 1); /* c = t_emb + y_emb */
    be->silu(be, s->temb, s->temb, (size_t)R * D);
    be->cast(be, s->c_act, FT_BUF_ACT, s->temb, FT_BUF_F32, (size_t)R * D);
    be->linear(be, mod, FT_BUF_F32, s->c_act, m->ada_w, m->ada_b, R, c->mod_width, D, FT_EPI_NONE);
}

void sit_forward(ft_backend *be, const sit_model *m, const sit_scratch *s, const float *x, int x_batch,
                 const float *v, const float *mod, int N, float *out) {
    const sit_config *c = &m->cfg;
    int D = c->hidden, T = c->tokens, MW = c->mod_width;
    int rows = N * T;
    be->patch_embed(be, s->tokens, x, c->in_channels, x_batch, v, c->is_refiner ? c->in_channels : 0, m->patch_w,
                    m->patch_b, m->pos, N, c->input_size, c->patch, D);
    /* block b's modulation: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp */
#define MOD(b, k) (mod + (size_t)(b) * 6 * D + (size_t)(k) * D)
    be->layernorm_modulate(be, s->h, s->tokens, MOD(0, 0), MOD(0, 1), MW, N, T, D, SIT_LN_EPS);
    for (int b = 0; b < c->depth; b++) {
        const sit_block_weights *w = &m->blocks[b];
        be->linear(be, s->qkv, FT_BUF_ACT, s->h, w->qkv_w, w->qkv_b, rows, 3 * D, D, FT_EPI_NONE);
        be->attention(be, s->attn, s->qkv, N, T, c->heads, c->head_dim);
        be->linear(be, s->a, FT_BUF_ACT, s->attn, w->proj_w, w->proj_b, rows, D, D, FT_EPI_NONE);
        be->gated_residual(be, s->tokens, s->a, MOD(b, 2), s->h, MOD(b, 3), MOD(b, 4), MW, N, T, D, SIT_LN_EPS);
        be->linear(be, s->fc1, FT_BUF_ACT, s->h, w->fc1_w, w->fc1_b, rows, c->mlp_hidden, D, FT_EPI_GELU_TANH);
        be->linear(be, s->a, FT_BUF_ACT, s->fc1, w->fc2_w, w->fc2_b, rows, D, c->mlp_hidden, FT_EPI_NONE);
        /* the next LayerNorm is block b+1's attention one, or the final layer's (= MOD(depth, 0..1)) */
        be->gated_residual(be, s->tokens, s->a, MOD(b, 5), s->h, MOD(b + 1, 0), MOD(b + 1, 1), MW, N, T, D,
                           SIT_LN_EPS);
    }
#undef MOD
    be->linear(be, s->fo, FT_BUF_ACT, s->h, m->final_w, m->final_b, rows, c->final_out, D, FT_EPI_NONE);
    be->unpatchify(be, out, s->fo, N, c->input_size, c->patch, c->out_channels, c->in_channels);
}
