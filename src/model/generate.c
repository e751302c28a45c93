#include "model/generate.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/config.h"
#include "formats/quantize.h"
#include "formats/safetensors.h"
#include "util/util.h"

typedef struct {
    st_write_tensor *t;
    void **bufs;
    int n, cap;
    uint64_t rng;
    int fp8;
    char *err;
} gen;

static float uniform(gen *g) { /* xorshift64*, in [-1, 1) */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return (float)((g->rng * 0x2545F4914F6CDD1DULL) >> 40) / (float)(1 << 23) - 1.0f;
}

static void *add(gen *g, const char *name, v4c_dtype dt, int64_t d0, int64_t d1) {
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->t = xrealloc(g->t, g->cap * sizeof *g->t);
        g->bufs = xrealloc(g->bufs, g->cap * sizeof *g->bufs);
    }
    st_write_tensor *t = &g->t[g->n];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->dtype = dt;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    size_t bytes = (size_t)d0 * (d1 ? d1 : 1) * dtype_table[dt].size;
    t->data = g->bufs[g->n] = xcalloc(bytes, 1);
    g->n++;
    return g->bufs[g->n - 1];
}

static void f32(gen *g, const char *name, int64_t d0, int64_t d1, float center, float spread) {
    float *p = add(g, name, DT_F32, d0, d1);
    for (int64_t i = 0; i < d0 * (d1 ? d1 : 1); i++) p[i] = center + spread * uniform(g);
}

static void bf16(gen *g, const char *name, int64_t d0, int64_t d1, float center, float spread) {
    uint16_t *p = add(g, name, DT_BF16, d0, d1);
    for (int64_t i = 0; i < d0 * (d1 ? d1 : 1); i++) {
        union { float f; uint32_t u; } v = {center + spread * uniform(g)};
        p[i] = (uint16_t)((v.u + 0x7FFF + ((v.u >> 16) & 1)) >> 16); /* round to nearest even */
    }
}

/* A weight matrix `prefix`.weight [rows, cols] ~ U(-1,1)/sqrt(cols), stored
 * BF16, or FP8 (fp4 = 0) / FP4 (fp4 = 1) with its .scale when quantizing. */
static void matrix(gen *g, const char *prefix, int64_t rows, int64_t cols, int fp4) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    float sd = 1.0f / sqrtf((float)cols);
    if (!g->fp8) {
        bf16(g, name, rows, cols, 0, sd);
        return;
    }
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++) w[i] = sd * uniform(g);
    if (fp4) {
        uint8_t *codes = add(g, name, DT_I8, rows, cols / 2);
        snprintf(name, sizeof name, "%s.scale", prefix);
        quantize_fp4_matrix(w, (int)rows, (int)cols, codes, add(g, name, DT_F8_E8M0, rows, cols / 32));
    } else {
        uint8_t *codes = add(g, name, DT_F8_E4M3, rows, cols);
        snprintf(name, sizeof name, "%s.scale", prefix);
        quantize_fp8_matrix(w, (int)rows, (int)cols, codes, add(g, name, DT_F8_E8M0, (rows + 127) / 128, (cols + 127) / 128));
    }
    free(w);
}

#define N(...) (snprintf(n, sizeof n, __VA_ARGS__), n)

static void hc_params(gen *g, const v4c_config *c, const char *p, const char *which) {
    char n[256];
    int64_t mix = (int64_t)(2 + c->hc_mult) * c->hc_mult, width = (int64_t)c->hc_mult * c->hidden_size;
    f32(g, N("%shc_%s_fn", p, which), mix, width, 0, 0.02f);
    f32(g, N("%shc_%s_base", p, which), mix, 0, 0, 0.5f);
    f32(g, N("%shc_%s_scale", p, which), 3, 0, 0.5f, 0.3f);
}

static void hc_head(gen *g, const v4c_config *c, const char *p) {
    char n[256];
    f32(g, N("%shc_head_fn", p), c->hc_mult, (int64_t)c->hc_mult * c->hidden_size, 0, 0.02f);
    f32(g, N("%shc_head_base", p), c->hc_mult, 0, 0, 0.5f);
    f32(g, N("%shc_head_scale", p), 1, 0, 0.5f, 0.3f);
}

static void compressor(gen *g, const v4c_config *c, const char *p, int ratio, int dim) {
    char n[256];
    int64_t width = (int64_t)(ratio == 4 ? 2 : 1) * dim, D = c->hidden_size;
    float sd = 1.0f / sqrtf((float)D);
    bf16(g, N("%swkv.weight", p), width, D, 0, sd);
    bf16(g, N("%swgate.weight", p), width, D, 0, sd);
    f32(g, N("%sape", p), ratio, width, 0, 0.5f);
    bf16(g, N("%snorm.weight", p), dim, 0, 1, 0.1f);
}

static void layer(gen *g, const v4c_config *c, int li) {
    char p[64], n[256];
    int is_mtp = li >= c->n_layers, ratio = c->compress_ratios[li];
    if (is_mtp) snprintf(p, sizeof p, "mtp.%d.", li - c->n_layers);
    else snprintf(p, sizeof p, "layers.%d.", li);
    int64_t D = c->hidden_size, H = c->n_heads, Dh = c->head_dim, G = c->o_groups, E = c->n_routed_experts;
    hc_params(g, c, p, "attn");
    hc_params(g, c, p, "ffn");
    bf16(g, N("%sattn_norm.weight", p), D, 0, 1, 0.1f);
    bf16(g, N("%sffn_norm.weight", p), D, 0, 1, 0.1f);
    matrix(g, N("%sattn.wq_a", p), c->q_lora_rank, D, 0);
    bf16(g, N("%sattn.q_norm.weight", p), c->q_lora_rank, 0, 1, 0.1f);
    matrix(g, N("%sattn.wq_b", p), H * Dh, c->q_lora_rank, 0);
    matrix(g, N("%sattn.wkv", p), Dh, D, 0);
    bf16(g, N("%sattn.kv_norm.weight", p), Dh, 0, 1, 0.1f);
    matrix(g, N("%sattn.wo_a", p), G * c->o_lora_rank, H * Dh / G, 0);
    matrix(g, N("%sattn.wo_b", p), D, G * c->o_lora_rank, 0);
    f32(g, N("%sattn.attn_sink", p), H, 0, 0, 1);
    if (ratio > 0) compressor(g, c, N("%sattn.compressor.", p), ratio, (int)Dh);
    if (ratio == 4) {
        int64_t nI = c->index_n_heads, dI = c->index_head_dim;
        matrix(g, N("%sattn.indexer.wq_b", p), nI * dI, c->q_lora_rank, 0);
        bf16(g, N("%sattn.indexer.weights_proj.weight", p), nI, D, 0, 1.0f / sqrtf((float)D));
        compressor(g, c, N("%sattn.indexer.compressor.", p), 4, (int)dI);
    }
    bf16(g, N("%sffn.gate.weight", p), E, D, 0, 1.0f / sqrtf((float)D));
    if (!is_mtp && li < c->n_hash_layers) {
        int64_t *t = add(g, N("%sffn.gate.tid2eid", p), DT_I64, c->vocab_size, c->n_experts_per_tok);
        for (int64_t v = 0; v < c->vocab_size; v++) /* k distinct experts per token */
            for (int k = 0; k < c->n_experts_per_tok; k++) t[v * c->n_experts_per_tok + k] = (v * 7 + k * (E / c->n_experts_per_tok)) % E;
    } else {
        f32(g, N("%sffn.gate.bias", p), E, 0, 0, 0.1f);
    }
    for (int e = 0; e < E; e++) {
        matrix(g, N("%sffn.experts.%d.w1", p, e), c->moe_inter, D, 1);
        matrix(g, N("%sffn.experts.%d.w2", p, e), D, c->moe_inter, 1);
        matrix(g, N("%sffn.experts.%d.w3", p, e), c->moe_inter, D, 1);
    }
    if (c->n_shared_experts > 0) {
        int64_t I = (int64_t)c->n_shared_experts * c->moe_inter;
        matrix(g, N("%sffn.shared_experts.w1", p), I, D, 0);
        matrix(g, N("%sffn.shared_experts.w2", p), D, I, 0);
        matrix(g, N("%sffn.shared_experts.w3", p), I, D, 0);
    }
    if (is_mtp) {
        matrix(g, N("%se_proj", p), D, D, 0);
        matrix(g, N("%sh_proj", p), D, D, 0);
        bf16(g, N("%senorm.weight", p), D, 0, 1, 0.1f);
        bf16(g, N("%shnorm.weight", p), D, 0, 1, 0.1f);
        bf16(g, N("%snorm.weight", p), D, 0, 1, 0.1f);
        hc_head(g, c, p);
    }
}

static int write_shards(gen *g, const char *dir, int n_shards, char *err) {
    char path[4096];
    if (n_shards <= 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        return st_write_file(path, g->t, g->n, err);
    }
    json_t *map = json_object();
    int per = (g->n + n_shards - 1) / n_shards, rc = 0;
    for (int s = 0; s < n_shards && !rc; s++) {
        int a = s * per, b = a + per < g->n ? a + per : g->n;
        char file[64];
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        for (int i = a; i < b; i++) json_object_set_new(map, g->t[i].name, json_string(file));
        rc = st_write_file(path, g->t + a, b > a ? b - a : 0, err);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_t *root = json_pack("{s:{},s:o}", "metadata", "weight_map", map);
    if (!rc && json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS)) rc = v4c_fail(err, "%s: cannot write", path);
    json_decref(root);
    return rc;
}

int generate_model(const v4c_config *c, const gen_params *p, const char *dir, char *err) {
    gen g = {.rng = p->seed * 0x9E3779B97F4A7C15ULL + 1, .fp8 = p->fp8, .err = err};
    char path[4096], n[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config_save(c, path, p->fp8, err)) return -1;
    bf16(&g, "embed.weight", c->vocab_size, c->hidden_size, 0, 1);
    bf16(&g, "head.weight", c->vocab_size, c->hidden_size, 0, 1.0f / sqrtf((float)c->hidden_size));
    bf16(&g, N("norm.weight"), c->hidden_size, 0, 1, 0.1f);
    hc_head(&g, c, "");
    for (int l = 0; l < c->n_layers + c->n_mtp; l++) layer(&g, c, l);
    int rc = write_shards(&g, dir, p->n_shards, err);
    for (int i = 0; i < g.n; i++) {
        free((char *)g.t[i].name);
        free(g.bufs[i]);
    }
    free(g.t);
    free(g.bufs);
    return rc;
}
