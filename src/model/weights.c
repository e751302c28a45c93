/* Binding checkpoint tensors to the model: every expected tensor is looked
 * up by its official name and checked for dtype and shape; errors name the
 * file and tensor. FP8/FP4/BF16 matrices stay in the mapping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "model/model.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "util/util.h"
#include "util/workmem.h"

/* A quantized matrix to pack once everything is bound (pack_quantized). */
typedef struct {
    v4c_matrix *W;
    st_tensor *t, *s;
} pending_pack;

typedef struct {
    v4c_model *m;
    char *err;
    pending_pack *packs;
    int n_packs;
} binder;

static const char *file_of(binder *b, const st_tensor *t) {
    const char *p = b->m->st.files[t->file].path, *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *dims) {
    size_t k = snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static st_tensor *find(binder *b, const char *name) {
    st_tensor *t = st_find(&b->m->st, name);
    if (!t) {
        v4c_fail(b->err, "missing tensor %s", name);
        return NULL;
    }
    t->used = 1;
    return t;
}

static int check_shape(binder *b, const st_tensor *t, int ndim, const int64_t *dims) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == dims[i];
    if (ok) return 0;
    char want[128], got[128];
    shape_str(want, sizeof want, ndim, dims);
    shape_str(got, sizeof got, t->ndim, t->shape);
    return v4c_fail(b->err, "%s: tensor %s: expected shape %s, got %s", file_of(b, t), t->name, want, got);
}

static int bad_dtype(binder *b, const st_tensor *t, const char *expected) {
    return v4c_fail(b->err, "%s: tensor %s: dtype %s, expected %s", file_of(b, t), t->name, dtype_table[t->dtype].name, expected);
}

/* Memory owned by the model, freed with it. */
static void *own_bytes(binder *b, size_t bytes) {
    v4c_model *m = b->m;
    m->owned = xrealloc(m->owned, (m->n_owned + 1) * sizeof(void *));
    return m->owned[m->n_owned++] = xmalloc(bytes);
}

static float *own(binder *b, size_t n) { return own_bytes(b, n * sizeof(float)); }

/* A small float tensor (norm weight, mHC parameters, sinks, biases): F32 is
 * used in place when aligned; BF16 (or unaligned F32) is converted once. */
static int bind_floats(binder *b, const char *name, const float **out, int ndim, int64_t d0, int64_t d1) {
    st_tensor *t = find(b, name);
    if (!t) return -1;
    int64_t dims[2] = {d0, d1};
    if (check_shape(b, t, ndim, dims)) return -1;
    if (t->dtype == DT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = t->data;
        return 0;
    }
    if (t->dtype != DT_F32 && t->dtype != DT_BF16) return bad_dtype(b, t, "F32 or BF16");
    float *f = own(b, t->numel);
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == DT_F32) memcpy(&f[i], (const char *)t->data + 4 * i, 4);
        else {
            uint16_t h;
            memcpy(&h, (const char *)t->data + 2 * i, 2);
            f[i] = bf16_to_f32(h);
        }
    }
    *out = f;
    return 0;
}

/* A 1-D float tensor of n elements (norm weights). */
static int bind_vec(binder *b, const char *name, const float **out, int64_t n) { return bind_floats(b, name, out, 1, n, 0); }

/* Whether weights are packed in panels: the active backend has panel
 * kernels and V4C_PANELS is not 0. */
static int panels_wanted(void) {
    const char *env = getenv("V4C_PANELS");
    return !(env && !strcmp(env, "0")) && kernel_backend_active()->panels;
}

/* FP8/FP4 weights read faster packed in panels (matrix.h; the few tokens of
 * a server's batch above all): done in place, so only in the copy of the
 * checkpoint that is ours (safetensors.c: copy_to_huge_pages); a mapped
 * checkpoint keeps its rows. A tensor bound twice is packed once. */
static void pack_quantized(binder *b, v4c_matrix *W, st_tensor *t, st_tensor *s) {
    const st_set *st = &b->m->st;
    if (!matrix_packable(W) || !st->files[t->file].copied || !st->files[s->file].copied || t->packed != s->packed) return;
    if (t->packed) {
        W->panels = PANEL_ROWS, W->scales_ok = matrix_scales_in_range(W);
        return;
    }
    if (!panels_wanted()) return;
    matrix_pack_in_place(W);
    t->packed = s->packed = 1;
}

/* `prefix`.weight with `prefix`.scale for FP8 (e4m3 + e8m0/F32 blocks of
 * 128x128) and FP4 (I8-packed e2m1 pairs + e8m0 per 32 columns). */
static int bind_matrix(binder *b, const char *prefix, v4c_matrix *W, int64_t rows, int64_t cols) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    st_tensor *t = find(b, name);
    if (!t) return -1;
    memset(W, 0, sizeof *W);
    W->op = strstr(prefix, ".experts.") ? OP_EXPERT : strstr(prefix, "shared_experts") ? OP_SHARED
          : strstr(prefix, "attn.") ? OP_ATTN : !strcmp(prefix, "head") ? OP_HEAD : OP_OTHER;
    W->rows = (int)rows;
    W->cols = (int)cols;
    W->data = t->data;
    int64_t dims[2] = {rows, cols};
    switch (t->dtype) {
    case DT_F32: W->kind = WK_F32; break;
    case DT_BF16: W->kind = WK_BF16; break;
    case DT_F8_E4M3: W->kind = WK_FP8; break;
    case DT_I8: case DT_U8: W->kind = WK_FP4; dims[1] = cols / 2; break;
    default: return bad_dtype(b, t, "BF16, F32, F8_E4M3 or I8 (packed FP4)");
    }
    if (check_shape(b, t, 2, dims)) return -1;
    if ((W->kind == WK_F32 && ((uintptr_t)t->data & 3)) || (W->kind == WK_BF16 && ((uintptr_t)t->data & 1))) {
        size_t bytes = t->nbytes;
        float *copy = own(b, (bytes + 3) / 4);
        memcpy(copy, t->data, bytes);
        W->data = copy;
    }
    if (W->kind != WK_FP8 && W->kind != WK_FP4) return 0;
    if (cols % 128)
        return v4c_fail(b->err, "%s: tensor %s: %lld input columns; quantized weights need a multiple of 128", file_of(b, t), name, (long long)cols);
    snprintf(name, sizeof name, "%s.scale", prefix);
    st_tensor *s = find(b, name);
    if (!s) return -1;
    if (W->kind == WK_FP8) {
        int64_t sd[2] = {(rows + 127) / 128, (cols + 127) / 128};
        if (s->dtype != DT_F8_E8M0 && s->dtype != DT_F32) return bad_dtype(b, s, "F8_E8M0 or F32");
        if (check_shape(b, s, 2, sd)) return -1;
        W->scale_is_f32 = s->dtype == DT_F32;
        W->scale = s->data;
        if (W->scale_is_f32 && ((uintptr_t)s->data & 3)) {
            float *copy = own(b, s->numel);
            memcpy(copy, s->data, s->nbytes);
            W->scale = copy;
        }
    } else {
        int64_t sd[2] = {rows, cols / 32};
        if (s->dtype != DT_F8_E8M0) return bad_dtype(b, s, "F8_E8M0");
        if (check_shape(b, s, 2, sd)) return -1;
        W->scale = s->data;
    }
    b->packs = xrealloc(b->packs, (b->n_packs + 1) * sizeof *b->packs);
    b->packs[b->n_packs++] = (pending_pack){W, t, s};
    return 0;
}

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static int bind_hc(binder *b, const char *p, const char *which, hc_weights *w) {
    const v4c_config *c = &b->m->cfg;
    int64_t mix = (int64_t)(2 + c->hc_mult) * c->hc_mult;
    char n[256];
    return bind_floats(b, NAME(n, "%shc_%s_fn", p, which), &w->fn, 2, mix, (int64_t)c->hc_mult * c->hidden_size) ||
           bind_floats(b, NAME(n, "%shc_%s_base", p, which), &w->base, 1, mix, 0) ||
           bind_floats(b, NAME(n, "%shc_%s_scale", p, which), &w->scale, 1, 3, 0);
}

static int bind_hc_head(binder *b, const char *p, hc_head_weights *w) {
    const v4c_config *c = &b->m->cfg;
    char n[256];
    return bind_floats(b, NAME(n, "%shc_head_fn", p), &w->fn, 2, c->hc_mult, (int64_t)c->hc_mult * c->hidden_size) ||
           bind_floats(b, NAME(n, "%shc_head_base", p), &w->base, 1, c->hc_mult, 0) ||
           bind_floats(b, NAME(n, "%shc_head_scale", p), &w->scale, 1, 1, 0);
}

static int bind_compressor(binder *b, const char *p, compressor_weights *w, int ratio, int dim) {
    const v4c_config *c = &b->m->cfg;
    char n[256];
    w->ratio = ratio;
    w->dim = dim;
    w->overlap = ratio == 4 ? 2 : 1;
    int64_t width = (int64_t)w->overlap * dim;
    return bind_matrix(b, NAME(n, "%swkv", p), &w->wkv, width, c->hidden_size) ||
           bind_matrix(b, NAME(n, "%swgate", p), &w->wgate, width, c->hidden_size) ||
           bind_floats(b, NAME(n, "%sape", p), &w->ape, 2, ratio, width) ||
           bind_vec(b, NAME(n, "%snorm.weight", p), &w->norm, dim);
}

static int bind_expert(binder *b, const char *p, expert_weights *e, int64_t inter) {
    int64_t D = b->m->cfg.hidden_size;
    char n[256];
    return bind_matrix(b, NAME(n, "%s.w1", p), &e->w1, inter, D) ||
           bind_matrix(b, NAME(n, "%s.w2", p), &e->w2, D, inter) ||
           bind_matrix(b, NAME(n, "%s.w3", p), &e->w3, inter, D);
}

static int bind_tid2eid(binder *b, const char *name, layer_weights *l) {
    const v4c_config *c = &b->m->cfg;
    st_tensor *t = find(b, name);
    if (!t) return -1;
    int64_t dims[2] = {c->vocab_size, c->n_experts_per_tok};
    if (t->dtype != DT_I64 && t->dtype != DT_I32) return bad_dtype(b, t, "I64 or I32");
    if (check_shape(b, t, 2, dims)) return -1;
    /* Converted to int32 once: the stored table may be I64 or I32 and need
     * not be aligned in the file. */
    int32_t *table = own_bytes(b, (size_t)t->numel * sizeof(int32_t));
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t e;
        if (t->dtype == DT_I64) memcpy(&e, (const char *)t->data + 8 * i, 8);
        else {
            int32_t e32;
            memcpy(&e32, (const char *)t->data + 4 * i, 4);
            e = e32;
        }
        if (e < 0 || e >= c->n_routed_experts)
            return v4c_fail(b->err, "%s: tensor %s: entry %lld is expert %lld, outside [0, %d)", file_of(b, t), name, (long long)i, (long long)e, c->n_routed_experts);
        table[i] = (int32_t)e;
    }
    l->tid2eid = table;
    return 0;
}

static int bind_layer(binder *b, int li) {
    v4c_model *m = b->m;
    const v4c_config *c = &m->cfg;
    layer_weights *l = &m->layers[li];
    l->index = li;
    l->is_mtp = li >= c->n_layers;
    l->ratio = c->compress_ratios[li];
    l->is_hash = !l->is_mtp && li < c->n_hash_layers;
    l->rope_freqs = own(b, c->rope_dim / 2 + 1);
    if (l->ratio == 0)
        rope_freqs(l->rope_freqs, c->rope_dim, c->rope_theta, 1.0f, 0, 0, 0);
    else
        rope_freqs(l->rope_freqs, c->rope_dim, c->compress_rope_theta, c->yarn_factor, c->yarn_orig_max_pos, c->yarn_beta_fast, c->yarn_beta_slow);

    char p[64], n[256];
    if (l->is_mtp) snprintf(p, sizeof p, "mtp.%d.", li - c->n_layers);
    else snprintf(p, sizeof p, "layers.%d.", li);
    int64_t D = c->hidden_size, H = c->n_heads, Dh = c->head_dim, G = c->o_groups;

    if (bind_hc(b, p, "attn", &l->hc_attn) || bind_hc(b, p, "ffn", &l->hc_ffn) ||
        bind_vec(b, NAME(n, "%sattn_norm.weight", p), &l->attn_norm, D) ||
        bind_vec(b, NAME(n, "%sffn_norm.weight", p), &l->ffn_norm, D) ||
        bind_matrix(b, NAME(n, "%sattn.wq_a", p), &l->wq_a, c->q_lora_rank, D) ||
        bind_vec(b, NAME(n, "%sattn.q_norm.weight", p), &l->q_norm, c->q_lora_rank) ||
        bind_matrix(b, NAME(n, "%sattn.wq_b", p), &l->wq_b, H * Dh, c->q_lora_rank) ||
        bind_matrix(b, NAME(n, "%sattn.wkv", p), &l->wkv, Dh, D) ||
        bind_vec(b, NAME(n, "%sattn.kv_norm.weight", p), &l->kv_norm, Dh) ||
        bind_matrix(b, NAME(n, "%sattn.wo_a", p), &l->wo_a, G * c->o_lora_rank, H * Dh / G) ||
        bind_matrix(b, NAME(n, "%sattn.wo_b", p), &l->wo_b, D, G * c->o_lora_rank) ||
        bind_floats(b, NAME(n, "%sattn.attn_sink", p), &l->attn_sink, 1, H, 0))
        return -1;
    if (l->ratio > 0 && bind_compressor(b, NAME(n, "%sattn.compressor.", p), &l->comp, l->ratio, (int)Dh)) return -1;
    if (l->ratio == 4) {
        int64_t nI = c->index_n_heads, dI = c->index_head_dim;
        if (bind_matrix(b, NAME(n, "%sattn.indexer.wq_b", p), &l->indexer.wq_b, nI * dI, c->q_lora_rank) ||
            bind_matrix(b, NAME(n, "%sattn.indexer.weights_proj", p), &l->indexer.weights_proj, nI, D) ||
            bind_compressor(b, NAME(n, "%sattn.indexer.compressor.", p), &l->indexer.comp, 4, (int)dI))
            return -1;
    }

    int E = c->n_routed_experts;
    if (bind_matrix(b, NAME(n, "%sffn.gate", p), &l->gate, E, D)) return -1;
    if (l->is_hash) {
        if (bind_tid2eid(b, NAME(n, "%sffn.gate.tid2eid", p), l)) return -1;
    } else if (bind_floats(b, NAME(n, "%sffn.gate.bias", p), &l->gate_bias, 1, E, 0)) {
        return -1;
    }
    l->experts = xcalloc(E, sizeof(expert_weights));
    for (int e = 0; e < E; e++)
        if (bind_expert(b, NAME(n, "%sffn.experts.%d", p, e), &l->experts[e], c->moe_inter)) return -1;
    if (c->n_shared_experts > 0 &&
        bind_expert(b, NAME(n, "%sffn.shared_experts", p), &l->shared, (int64_t)c->n_shared_experts * c->moe_inter))
        return -1;

    if (l->is_mtp) {
        if (bind_matrix(b, NAME(n, "%se_proj", p), &l->e_proj, D, D) ||
            bind_matrix(b, NAME(n, "%sh_proj", p), &l->h_proj, D, D) ||
            bind_vec(b, NAME(n, "%senorm.weight", p), &l->enorm, D) ||
            bind_vec(b, NAME(n, "%shnorm.weight", p), &l->hnorm, D) ||
            bind_vec(b, NAME(n, "%snorm.weight", p), &l->norm, D) || bind_hc_head(b, p, &l->hc_head))
            return -1;
    }
    return 0;
}

/* The head (F32/BF16, up to 8 tokens a step: a server's batch) reads
 * fastest packed in panels (matrix.h), when the active backend takes them:
 * a copy in anonymous huge pages; the checkpoint's own bytes are no longer
 * read. V4C_PANELS=0 keeps the rows as stored. Best effort: without the
 * memory, the head stays as it is. */
static void pack_head(v4c_model *m) {
    if (!panels_wanted() || !matrix_packable(&m->head)) return;
    size_t len, bytes = (size_t)matrix_bytes(&m->head, m->head.rows);
    void *p = huge_map(bytes, &len);
    if (!p) return;
    const void *stored = m->head.data;
    matrix_pack_panels(&m->head, p); /* left writable, as the weights (safetensors.c: copy_to_huge_pages) */
    m->head_panels = p, m->head_panels_len = len;
    huge_release(stored, bytes); /* read no more: the panels replace it (1 GB for Flash's head) */
}

/* Every tensor the model uses, checked and bound; the quantized matrices
 * queued in b->packs. */
static int bind_all(binder *b) {
    v4c_model *m = b->m;
    const v4c_config *c = &m->cfg;
    st_tensor *t = find(b, "embed.weight");
    if (!t) return -1;
    int64_t ed[2] = {c->vocab_size, c->hidden_size};
    if (t->dtype != DT_BF16 && t->dtype != DT_F32) return bad_dtype(b, t, "BF16 or F32");
    if (check_shape(b, t, 2, ed)) return -1;
    if (t->dtype == DT_BF16 && ((uintptr_t)t->data & 1) == 0) m->embed_bf16 = t->data;
    else if (t->dtype == DT_F32 && ((uintptr_t)t->data & 3) == 0) m->embed_f32 = t->data;
    else if (bind_floats(b, "embed.weight", &m->embed_f32, 2, ed[0], ed[1])) return -1;

    if (bind_matrix(b, "head", &m->head, c->vocab_size, c->hidden_size) ||
        bind_vec(b, "norm.weight", &m->norm, c->hidden_size) || bind_hc_head(b, "", &m->hc_head))
        return -1;
    int n = c->n_layers + c->n_mtp;
    m->layers = xcalloc(n, sizeof(layer_weights));
    for (int i = 0; i < n; i++)
        if (bind_layer(b, i)) return -1;
    return 0;
}

int model_bind_weights(v4c_model *m, char *err) {
    binder b = {m, err, NULL, 0};
    int rc = bind_all(&b);
    if (rc == 0) {
        /* The fingerprint (session files) reads the checkpoint's bytes as
         * stored: before the packing rearranges or releases them. */
        m->fingerprint = model_fingerprint(m);
        pack_head(m);
        for (int i = 0; i < b.n_packs; i++) pack_quantized(&b, b.packs[i].W, b.packs[i].t, b.packs[i].s);
    }
    free(b.packs);
    return rc;
}

void model_free_weights(v4c_model *m) {
    if (m->head_panels) munmap(m->head_panels, m->head_panels_len);
    m->head_panels = NULL;
    int n = m->cfg.n_layers + m->cfg.n_mtp;
    if (m->layers)
        for (int i = 0; i < n; i++) free(m->layers[i].experts);
    free(m->layers);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    m->layers = NULL;
    m->owned = NULL;
    m->n_owned = 0;
}

void embed_row(const v4c_model *m, int32_t token, float *out) {
    int D = m->cfg.hidden_size;
    if (m->embed_f32) {
        memcpy(out, m->embed_f32 + (size_t)token * D, D * sizeof(float));
        return;
    }
    const uint16_t *row = m->embed_bf16 + (size_t)token * D;
    for (int i = 0; i < D; i++) out[i] = bf16_to_f32(row[i]);
}
