/* Parameter table, initialisation and checkpoint I/O in the official layout
 * (the names of src/model/weights.c and generate.c). */
#include "train/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/config.h"
#include "formats/dtype.h"
#include "formats/quantize.h"
#include "formats/safetensors.h"
#include "kernels/ops.h"
#include "util/util.h"

static size_t add(tr_model *m, const char *name, int rows, int cols, opt_kind opt, int save_f32) {
    m->info = xrealloc(m->info, (size_t)(m->n_info + 1) * sizeof *m->info);
    param_info *p = &m->info[m->n_info++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rows = rows;
    p->cols = cols;
    p->offset = m->n_params;
    p->opt = opt;
    p->save_f32 = save_f32;
    p->is_indexer = strstr(name, ".indexer.") != NULL;
    m->n_params += (size_t)rows * (cols ? cols : 1);
    return p->offset;
}

#define NM(...) (snprintf(nm, sizeof nm, __VA_ARGS__), nm)

static size_t matrix(tr_model *m, const char *name, int rows, int cols) { return add(m, name, rows, cols, OPT_MUON, 0); }
static size_t normw(tr_model *m, const char *name, int n) { return add(m, name, n, 0, OPT_ADAMW, 0); }

static void hc_table(tr_model *m, tr_hc *h, const char *p, const char *which, int rows) {
    char nm[128];
    int width = m->cfg.hc_mult * m->cfg.hidden_size;
    h->fn = add(m, NM("%shc_%s_fn", p, which), rows, width, OPT_MUON, 1);
    h->base = add(m, NM("%shc_%s_base", p, which), rows, 0, OPT_ADAMW, 1);
    h->scale = add(m, NM("%shc_%s_scale", p, which), !strcmp(which, "head") ? 1 : 3, 0, OPT_ADAMW, 1);
}

static void compressor_table(tr_model *m, tr_compressor *c, const char *p, int ratio, int dim) {
    char nm[128];
    int D = m->cfg.hidden_size;
    c->ratio = ratio;
    c->dim = dim;
    c->overlap = ratio == 4 ? 2 : 1;
    int width = c->overlap * dim;
    c->wkv = matrix(m, NM("%swkv.weight", p), width, D);
    c->wgate = matrix(m, NM("%swgate.weight", p), width, D);
    c->ape = add(m, NM("%sape", p), ratio, width, OPT_ADAMW, 1);
    c->norm = normw(m, NM("%snorm.weight", p), dim);
}

static void layer_table(tr_model *m, int li) {
    const v4c_config *c = &m->cfg;
    tr_layer *l = &m->layers[li];
    char p[64], nm[128];
    l->index = li;
    l->is_mtp = li >= c->n_layers;
    l->ratio = c->compress_ratios[li];
    l->is_hash = !l->is_mtp && li < c->n_hash_layers;
    if (l->is_mtp) snprintf(p, sizeof p, "mtp.%d.", li - c->n_layers);
    else snprintf(p, sizeof p, "layers.%d.", li);
    int D = c->hidden_size, H = c->n_heads, Dh = c->head_dim, G = c->o_groups, E = c->n_routed_experts, R = c->rope_dim;
    int mix = (2 + c->hc_mult) * c->hc_mult;
    l->rope_freqs = xmalloc((size_t)(R / 2) * sizeof(float));
    if (l->ratio > 0)
        rope_freqs(l->rope_freqs, R, c->compress_rope_theta, c->yarn_factor, c->yarn_orig_max_pos, c->yarn_beta_fast, c->yarn_beta_slow);
    else
        rope_freqs(l->rope_freqs, R, c->rope_theta, 1, 0, 0, 0);
    hc_table(m, &l->hc_attn, p, "attn", mix);
    hc_table(m, &l->hc_ffn, p, "ffn", mix);
    l->attn_norm = normw(m, NM("%sattn_norm.weight", p), D);
    l->ffn_norm = normw(m, NM("%sffn_norm.weight", p), D);
    l->wq_a = matrix(m, NM("%sattn.wq_a.weight", p), c->q_lora_rank, D);
    l->q_norm = normw(m, NM("%sattn.q_norm.weight", p), c->q_lora_rank);
    l->wq_b = matrix(m, NM("%sattn.wq_b.weight", p), H * Dh, c->q_lora_rank);
    l->wkv = matrix(m, NM("%sattn.wkv.weight", p), Dh, D);
    l->kv_norm = normw(m, NM("%sattn.kv_norm.weight", p), Dh);
    l->wo_a = matrix(m, NM("%sattn.wo_a.weight", p), G * c->o_lora_rank, H * Dh / G);
    l->wo_b = matrix(m, NM("%sattn.wo_b.weight", p), D, G * c->o_lora_rank);
    l->attn_sink = add(m, NM("%sattn.attn_sink", p), H, 0, OPT_ADAMW, 1);
    if (l->ratio > 0) compressor_table(m, &l->comp, NM("%sattn.compressor.", p), l->ratio, Dh);
    if (l->ratio == 4) {
        int nI = c->index_n_heads, dI = c->index_head_dim;
        l->iwq_b = matrix(m, NM("%sattn.indexer.wq_b.weight", p), nI * dI, c->q_lora_rank);
        l->iweights_proj = matrix(m, NM("%sattn.indexer.weights_proj.weight", p), nI, D);
        compressor_table(m, &l->icomp, NM("%sattn.indexer.compressor.", p), 4, dI);
    }
    l->gate = matrix(m, NM("%sffn.gate.weight", p), E, D);
    if (l->is_hash) l->tid2eid = xcalloc((size_t)c->vocab_size * c->n_experts_per_tok, sizeof(int32_t));
    else l->gate_bias = add(m, NM("%sffn.gate.bias", p), E, 0, OPT_NONE, 1);
    l->w1 = xmalloc((size_t)E * sizeof(size_t));
    l->w2 = xmalloc((size_t)E * sizeof(size_t));
    l->w3 = xmalloc((size_t)E * sizeof(size_t));
    for (int e = 0; e < E; e++) {
        l->w1[e] = matrix(m, NM("%sffn.experts.%d.w1.weight", p, e), c->moe_inter, D);
        l->w2[e] = matrix(m, NM("%sffn.experts.%d.w2.weight", p, e), D, c->moe_inter);
        l->w3[e] = matrix(m, NM("%sffn.experts.%d.w3.weight", p, e), c->moe_inter, D);
    }
    if (c->n_shared_experts > 0) {
        int inter = c->n_shared_experts * c->moe_inter;
        l->sw1 = matrix(m, NM("%sffn.shared_experts.w1.weight", p), inter, D);
        l->sw2 = matrix(m, NM("%sffn.shared_experts.w2.weight", p), D, inter);
        l->sw3 = matrix(m, NM("%sffn.shared_experts.w3.weight", p), inter, D);
    }
    if (l->is_mtp) {
        l->e_proj = matrix(m, NM("%se_proj.weight", p), D, D);
        l->h_proj = matrix(m, NM("%sh_proj.weight", p), D, D);
        l->enorm = normw(m, NM("%senorm.weight", p), D);
        l->hnorm = normw(m, NM("%shnorm.weight", p), D);
        l->norm = normw(m, NM("%snorm.weight", p), D);
        hc_table(m, &l->hc_head, p, "head", c->hc_mult);
    }
}

void tr_model_init(tr_model *m, const v4c_config *cfg) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const v4c_config *c = &m->cfg;
    m->embed = add(m, "embed.weight", c->vocab_size, c->hidden_size, OPT_ADAMW, 0);
    m->head = add(m, "head.weight", c->vocab_size, c->hidden_size, OPT_ADAMW, 0);
    m->norm = normw(m, "norm.weight", c->hidden_size);
    hc_table(m, &m->hc_head, "", "head", c->hc_mult);
    m->layers = xcalloc((size_t)(c->n_layers + c->n_mtp), sizeof *m->layers);
    for (int l = 0; l < c->n_layers + c->n_mtp; l++) layer_table(m, l);
    m->params = xcalloc(m->n_params, sizeof(real));
    m->grads = xcalloc(m->n_params, sizeof(real));
}

void tr_model_free(tr_model *m) {
    for (int l = 0; m->layers && l < m->cfg.n_layers + m->cfg.n_mtp; l++) {
        tr_layer *L = &m->layers[l];
        free(L->rope_freqs);
        free(L->tid2eid);
        free(L->w1);
        free(L->w2);
        free(L->w3);
    }
    free(m->layers);
    free(m->info);
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

const param_info *tr_model_find(const tr_model *m, const char *name) {
    for (int i = 0; i < m->n_info; i++)
        if (!strcmp(m->info[i].name, name)) return &m->info[i];
    return NULL;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}
static double rng_normal(uint64_t *s) {
    double u1 = ((rng_next(s) >> 11) + 0.5) / 9007199254740992.0, u2 = (rng_next(s) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

void tr_model_randomize(tr_model *m, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    const v4c_config *c = &m->cfg;
    for (int i = 0; i < m->n_info; i++) {
        const param_info *p = &m->info[i];
        real *w = P(m, p->offset);
        size_t n = (size_t)p->rows * (p->cols ? p->cols : 1);
        double sd = 0, center = 0;
        if (strstr(p->name, "hc_") && ends_with(p->name, "_fn")) sd = 0.02;
        else if (strstr(p->name, "hc_") && ends_with(p->name, "_scale")) center = 0.01;
        else if (ends_with(p->name, "norm.weight")) center = 1;
        else if (!strcmp(p->name, "embed.weight")) sd = 1;
        else if (p->opt == OPT_MUON || !strcmp(p->name, "head.weight")) {
            sd = 1 / sqrt((double)p->cols);
            /* residual-branch outputs start small so the stream stays near identity */
            if (strstr(p->name, ".w2.") || strstr(p->name, "wo_b")) sd /= sqrt(2.0 * (c->n_layers + c->n_mtp));
        }
        for (size_t k = 0; k < n; k++) w[k] = (real)(center + sd * rng_normal(&s));
    }
    int E = c->n_routed_experts, K = c->n_experts_per_tok;
    for (int l = 0; l < c->n_layers + c->n_mtp; l++) {
        int32_t *t = m->layers[l].tid2eid;
        for (int v = 0; t && v < c->vocab_size; v++) /* k distinct experts per token */
            for (int k = 0; k < K; k++) {
                int e, dup;
                do {
                    e = (int)(rng_next(&s) % (uint64_t)E);
                    dup = 0;
                    for (int j = 0; j < k; j++) dup |= t[(size_t)v * K + j] == e;
                } while (dup);
                t[(size_t)v * K + k] = e;
            }
    }
}

static float tensor_value(const st_tensor *t, size_t i) {
    if (t->dtype == DT_BF16) {
        uint16_t h;
        memcpy(&h, (const char *)t->data + 2 * i, 2);
        return bf16_to_f32(h);
    }
    float f;
    memcpy(&f, (const char *)t->data + 4 * i, 4);
    return f;
}

int tr_model_load(tr_model *m, const char *dir, char *err) {
    dtype_init_tables();
    st_set st;
    memset(&st, 0, sizeof st);
    if (st_open_dir(&st, dir, err)) return -1;
    int rc = 0;
    for (int i = 0; i < m->n_info && !rc; i++) {
        const param_info *p = &m->info[i];
        st_tensor *t = st_find(&st, p->name);
        size_t n = (size_t)p->rows * (p->cols ? p->cols : 1);
        if (!t) rc = v4c_fail(err, "%s: missing tensor %s", dir, p->name);
        else if (t->dtype != DT_BF16 && t->dtype != DT_F32)
            rc = v4c_fail(err, "%s: tensor %s is %s; training needs a BF16/F32 checkpoint", dir, p->name, dtype_table[t->dtype].name);
        else if ((size_t)t->numel != n) rc = v4c_fail(err, "%s: tensor %s has %lld elements, expected %zu", dir, p->name, (long long)t->numel, n);
        else
            for (size_t k = 0; k < n; k++) P(m, p->offset)[k] = tensor_value(t, k);
    }
    const v4c_config *c = &m->cfg;
    for (int l = 0; l < c->n_layers && !rc; l++) {
        int32_t *tab = m->layers[l].tid2eid;
        if (!tab) continue;
        char nm[96];
        st_tensor *t = st_find(&st, NM("layers.%d.ffn.gate.tid2eid", l));
        size_t n = (size_t)c->vocab_size * c->n_experts_per_tok;
        if (!t || (size_t)t->numel != n || (t->dtype != DT_I64 && t->dtype != DT_I32)) {
            rc = v4c_fail(err, "%s: missing or malformed %s", dir, nm);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            int64_t e = 0;
            if (t->dtype == DT_I64) memcpy(&e, (const char *)t->data + 8 * k, 8);
            else {
                int32_t e32;
                memcpy(&e32, (const char *)t->data + 4 * k, 4);
                e = e32;
            }
            tab[k] = (int32_t)e;
        }
    }
    st_close(&st);
    return rc;
}

static uint16_t f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    return (uint16_t)((v.u + 0x7FFF + ((v.u >> 16) & 1)) >> 16); /* nearest even */
}

/* The released format (generate.c's fp8 layout): routed experts FP4, the
 * other linear layers of attention, shared experts and MTP projections FP8;
 * embedding, head, compressors, indexer weights_proj, router and norms stay BF16. */
static int release_format(const param_info *p) {
    if (!p->cols) return 0;
    if (strstr(p->name, ".experts.")) return 2;
    static const char *const fp8[] = {"attn.wq_a.", "attn.wq_b.", "attn.wkv.", "attn.wo_a.", "attn.wo_b.", "indexer.wq_b.", "shared_experts.",
                                      "e_proj.", "h_proj."};
    for (size_t i = 0; i < sizeof fp8 / sizeof fp8[0]; i++)
        if (strstr(p->name, fp8[i])) return 1;
    return 0;
}

int tr_model_save(const tr_model *m, const char *dir, int quantized, char *err) {
    const v4c_config *c = &m->cfg;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config_save(c, path, quantized, err)) return -1;
    int n_hash = 0;
    for (int l = 0; l < c->n_layers; l++) n_hash += m->layers[l].tid2eid != NULL;
    int n_scales = 0;
    for (int i = 0; quantized && i < m->n_info; i++) n_scales += release_format(&m->info[i]) != 0;
    int n = m->n_info + n_hash + n_scales, k = 0, sc = 0;
    st_write_tensor *t = xcalloc((size_t)n, sizeof *t);
    void **bufs = xcalloc((size_t)n, sizeof *bufs);
    char (*names)[96] = xcalloc((size_t)n_hash + n_scales + 1, sizeof *names);
    for (int i = 0; i < m->n_info; i++, k++) {
        const param_info *p = &m->info[i];
        size_t cnt = (size_t)p->rows * (p->cols ? p->cols : 1);
        const real *w = P(m, p->offset);
        t[k].name = p->name;
        t[k].ndim = p->cols ? 2 : 1;
        t[k].shape[0] = p->rows;
        t[k].shape[1] = p->cols;
        t[k].dtype = p->save_f32 ? DT_F32 : DT_BF16;
        int fmt = quantized ? release_format(p) : 0;
        if (fmt) {
            float *wf = xmalloc(cnt * sizeof(float));
            for (size_t j = 0; j < cnt; j++) wf[j] = (float)w[j];
            int R = p->rows, C = p->cols;
            char *sname = names[n_hash + sc++];
            snprintf(sname, sizeof names[0], "%.*s.scale", (int)(strlen(p->name) - strlen(".weight")), p->name);
            st_write_tensor *s = &t[m->n_info + n_hash + sc - 1];
            *s = (st_write_tensor){.name = sname, .dtype = DT_F8_E8M0, .ndim = 2};
            if (fmt == 2) {
                t[k].dtype = DT_I8;
                t[k].shape[1] = C / 2;
                s->shape[0] = R;
                s->shape[1] = C / 32;
                bufs[k] = xmalloc((size_t)R * C / 2);
                s->data = bufs[m->n_info + n_hash + sc - 1] = xmalloc((size_t)R * C / 32);
                quantize_fp4_matrix(wf, R, C, bufs[k], bufs[m->n_info + n_hash + sc - 1]);
            } else {
                t[k].dtype = DT_F8_E4M3;
                s->shape[0] = (R + 127) / 128;
                s->shape[1] = (C + 127) / 128;
                bufs[k] = xmalloc((size_t)R * C);
                s->data = bufs[m->n_info + n_hash + sc - 1] = xmalloc((size_t)s->shape[0] * s->shape[1]);
                quantize_fp8_matrix(wf, R, C, bufs[k], bufs[m->n_info + n_hash + sc - 1]);
            }
            free(wf);
        } else if (p->save_f32) {
            float *b = bufs[k] = xmalloc(cnt * sizeof(float));
            for (size_t j = 0; j < cnt; j++) b[j] = (float)w[j];
        } else {
            uint16_t *b = bufs[k] = xmalloc(cnt * sizeof(uint16_t));
            for (size_t j = 0; j < cnt; j++) b[j] = f32_to_bf16((float)w[j]);
        }
        t[k].data = bufs[k];
    }
    for (int l = 0, h = 0; l < c->n_layers; l++) {
        const int32_t *tab = m->layers[l].tid2eid;
        if (!tab) continue;
        size_t cnt = (size_t)c->vocab_size * c->n_experts_per_tok;
        int64_t *b = bufs[k] = xmalloc(cnt * sizeof(int64_t));
        for (size_t j = 0; j < cnt; j++) b[j] = tab[j];
        snprintf(names[h], sizeof names[h], "layers.%d.ffn.gate.tid2eid", l);
        t[k] = (st_write_tensor){.name = names[h++], .dtype = DT_I64, .ndim = 2, .shape = {c->vocab_size, c->n_experts_per_tok}, .data = b};
        k++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = st_write_file(path, t, n, err);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(names);
    free(t);
    return rc;
}
