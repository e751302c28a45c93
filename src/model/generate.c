#include "model/generate.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/config.h"
#include "formats/quantize.h"
#include "util/util.h"

/* ---- presets ---------------------------------------------------------------- */

static const v4c_config tiny = {
    .vocab_size = 1024, .hidden_size = 128, .n_layers = 4, .n_mtp = 1, .n_heads = 2, .head_dim = 128, .rope_dim = 64,
    .q_lora_rank = 128, .o_groups = 2, .o_lora_rank = 64, .window = 32, .index_n_heads = 4, .index_head_dim = 64,
    .index_topk = 8, .n_routed_experts = 8, .n_experts_per_tok = 2, .n_shared_experts = 1, .moe_inter = 128,
    .n_hash_layers = 1, .route_scale = 1.5f, .swiglu_limit = 10, .hc_mult = 4, .hc_sinkhorn_iters = 20, .hc_eps = 1e-6f,
    .rope_theta = 10000, .compress_rope_theta = 160000, .yarn_factor = 4, .yarn_orig_max_pos = 256, .yarn_beta_fast = 32,
    .yarn_beta_slow = 1, .norm_eps = 1e-6f, .max_position_embeddings = 4096, .bos_token_id = 0, .eos_token_id = 1,
    .compress_ratios = {0, 4, 16, 4, 4},
};

/* Read off the released checkpoints' tensor shapes (MODEL.md §1). */
static v4c_config released(int D, int L, int H, int qr, int G, int topk, int E, int inter, float route_scale, int first_ratio) {
    v4c_config c = {
        .vocab_size = 129280, .hidden_size = D, .n_layers = L, .n_mtp = 1, .n_heads = H, .head_dim = 512, .rope_dim = 64,
        .q_lora_rank = qr, .o_groups = G, .o_lora_rank = 1024, .window = 128, .index_n_heads = 64, .index_head_dim = 128,
        .index_topk = topk, .n_routed_experts = E, .n_experts_per_tok = 6, .n_shared_experts = 1, .moe_inter = inter,
        .n_hash_layers = 3, .route_scale = route_scale, .swiglu_limit = 10, .hc_mult = 4, .hc_sinkhorn_iters = 20,
        .hc_eps = 1e-6f, .rope_theta = 10000, .compress_rope_theta = 160000, .yarn_factor = 16, .yarn_orig_max_pos = 65536,
        .yarn_beta_fast = 32, .yarn_beta_slow = 1, .norm_eps = 1e-6f, .max_position_embeddings = 1048576,
        .bos_token_id = 0, .eos_token_id = 1,
    };
    /* two leading layers of first_ratio, then CSA/HCA alternating; MTP window-only */
    for (int l = 0; l < L; l++) c.compress_ratios[l] = l < 2 ? first_ratio : (l % 2 == 0 ? 4 : 128);
    c.compress_ratios[L] = 0;
    return c;
}

int model_preset(const char *name, v4c_config *c) {
    if (!strcmp(name, "tiny")) *c = tiny;
    else if (!strcmp(name, "flash")) *c = released(4096, 43, 64, 1024, 8, 512, 256, 2048, 1.5f, 0);
    else if (!strcmp(name, "pro")) *c = released(7168, 61, 128, 1536, 16, 1024, 384, 3072, 2.5f, 128);
    else return -1;
    return 0;
}

/* ---- the tensor list ---------------------------------------------------------- */

/* How a tensor's bytes are made. Matrices are random e4m3 / e2m1 codes
 * with a block scale near 1/sqrt(fan-in), or BF16 values of that size. */
typedef enum { FILL_F32, FILL_BF16, FILL_FP8, FILL_FP8_SCALE, FILL_FP4, FILL_FP4_SCALE, FILL_TID2EID } fill_kind;

typedef struct {
    st_write_tensor *t;
    fill_kind *fill;
    float *center, *spread;
    int64_t *fan_in;
    int n, cap;
    int fp8;
} tensor_list;

static void push(tensor_list *l, const char *name, v4c_dtype dt, int64_t d0, int64_t d1, fill_kind fill, float center, float spread,
                 int64_t fan_in) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->t = xrealloc(l->t, l->cap * sizeof *l->t);
        l->fill = xrealloc(l->fill, l->cap * sizeof *l->fill);
        l->center = xrealloc(l->center, l->cap * sizeof(float));
        l->spread = xrealloc(l->spread, l->cap * sizeof(float));
        l->fan_in = xrealloc(l->fan_in, l->cap * sizeof(int64_t));
    }
    st_write_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->dtype = dt;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    l->fill[l->n] = fill;
    l->center[l->n] = center;
    l->spread[l->n] = spread;
    l->fan_in[l->n] = fan_in;
    l->n++;
}

static void vec_f32(tensor_list *l, const char *name, int64_t d0, int64_t d1, float center, float spread) {
    push(l, name, DT_F32, d0, d1, FILL_F32, center, spread, 0);
}

static void vec_bf16(tensor_list *l, const char *name, int64_t d0, int64_t d1, float center, float spread) {
    push(l, name, DT_BF16, d0, d1, FILL_BF16, center, spread, 0);
}

/* `prefix`.weight [rows, cols] (+ `prefix`.scale when quantized). */
static void matrix(tensor_list *l, const char *prefix, int64_t rows, int64_t cols, int fp4) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    float sd = 1.0f / sqrtf((float)cols);
    if (!l->fp8) {
        push(l, name, DT_BF16, rows, cols, FILL_BF16, 0, sd * 1.7320508f, cols); /* uniform with std sd */
        return;
    }
    if (fp4) push(l, name, DT_I8, rows, cols / 2, FILL_FP4, 0, 0, cols);
    else push(l, name, DT_F8_E4M3, rows, cols, FILL_FP8, 0, 0, cols);
    snprintf(name, sizeof name, "%s.scale", prefix);
    if (fp4) push(l, name, DT_F8_E8M0, rows, cols / 32, FILL_FP4_SCALE, 0, 0, cols);
    else push(l, name, DT_F8_E8M0, (rows + 127) / 128, (cols + 127) / 128, FILL_FP8_SCALE, 0, 0, cols);
}

#define N(...) (snprintf(n, sizeof n, __VA_ARGS__), n)

static void hc_params(tensor_list *l, const v4c_config *c, const char *p, const char *which) {
    char n[256];
    int64_t mix = (int64_t)(2 + c->hc_mult) * c->hc_mult, width = (int64_t)c->hc_mult * c->hidden_size;
    vec_f32(l, N("%shc_%s_fn", p, which), mix, width, 0, 0.02f);
    vec_f32(l, N("%shc_%s_base", p, which), mix, 0, 0, 0.5f);
    vec_f32(l, N("%shc_%s_scale", p, which), 3, 0, 0.5f, 0.3f);
}

static void hc_head(tensor_list *l, const v4c_config *c, const char *p) {
    char n[256];
    vec_f32(l, N("%shc_head_fn", p), c->hc_mult, (int64_t)c->hc_mult * c->hidden_size, 0, 0.02f);
    vec_f32(l, N("%shc_head_base", p), c->hc_mult, 0, 0, 0.5f);
    vec_f32(l, N("%shc_head_scale", p), 1, 0, 0.5f, 0.3f);
}

static void compressor(tensor_list *l, const v4c_config *c, const char *p, int ratio, int dim) {
    char n[256];
    int64_t width = (int64_t)(ratio == 4 ? 2 : 1) * dim, D = c->hidden_size;
    float sd = 1.7320508f / sqrtf((float)D);
    vec_f32(l, N("%sape", p), ratio, width, 0, 0.5f);
    vec_bf16(l, N("%swkv.weight", p), width, D, 0, sd);
    vec_bf16(l, N("%swgate.weight", p), width, D, 0, sd);
    vec_bf16(l, N("%snorm.weight", p), dim, 0, 1, 0.1f);
}

static void layer(tensor_list *l, const v4c_config *c, int li) {
    char p[64], n[256];
    int is_mtp = li >= c->n_layers, ratio = c->compress_ratios[li];
    if (is_mtp) snprintf(p, sizeof p, "mtp.%d.", li - c->n_layers);
    else snprintf(p, sizeof p, "layers.%d.", li);
    int64_t D = c->hidden_size, H = c->n_heads, Dh = c->head_dim, G = c->o_groups, E = c->n_routed_experts;
    if (is_mtp) {
        matrix(l, N("%se_proj", p), D, D, 0);
        matrix(l, N("%sh_proj", p), D, D, 0);
        vec_bf16(l, N("%senorm.weight", p), D, 0, 1, 0.1f);
        vec_bf16(l, N("%shnorm.weight", p), D, 0, 1, 0.1f);
        vec_bf16(l, N("%snorm.weight", p), D, 0, 1, 0.1f);
        hc_head(l, c, p);
    }
    vec_f32(l, N("%sattn.attn_sink", p), H, 0, 0, 1);
    matrix(l, N("%sattn.wq_a", p), c->q_lora_rank, D, 0);
    vec_bf16(l, N("%sattn.q_norm.weight", p), c->q_lora_rank, 0, 1, 0.1f);
    matrix(l, N("%sattn.wq_b", p), H * Dh, c->q_lora_rank, 0);
    matrix(l, N("%sattn.wkv", p), Dh, D, 0);
    vec_bf16(l, N("%sattn.kv_norm.weight", p), Dh, 0, 1, 0.1f);
    matrix(l, N("%sattn.wo_a", p), G * c->o_lora_rank, H * Dh / G, 0);
    matrix(l, N("%sattn.wo_b", p), D, G * c->o_lora_rank, 0);
    if (ratio > 0) compressor(l, c, N("%sattn.compressor.", p), ratio, (int)Dh);
    if (ratio == 4) {
        int64_t nI = c->index_n_heads, dI = c->index_head_dim;
        matrix(l, N("%sattn.indexer.wq_b", p), nI * dI, c->q_lora_rank, 0);
        vec_bf16(l, N("%sattn.indexer.weights_proj.weight", p), nI, D, 0, 1.7320508f / sqrtf((float)D));
        compressor(l, c, N("%sattn.indexer.compressor.", p), 4, (int)dI);
    }
    vec_bf16(l, N("%sattn_norm.weight", p), D, 0, 1, 0.1f);
    vec_bf16(l, N("%sffn_norm.weight", p), D, 0, 1, 0.1f);
    hc_params(l, c, p, "attn");
    hc_params(l, c, p, "ffn");
    vec_bf16(l, N("%sffn.gate.weight", p), E, D, 0, 1.7320508f / sqrtf((float)D));
    if (!is_mtp && li < c->n_hash_layers) push(l, N("%sffn.gate.tid2eid", p), DT_I64, c->vocab_size, c->n_experts_per_tok, FILL_TID2EID, 0, 0, E);
    else vec_f32(l, N("%sffn.gate.bias", p), E, 0, 0, 0.1f);
    for (int e = 0; e < E; e++) {
        matrix(l, N("%sffn.experts.%d.w1", p, e), c->moe_inter, D, 1);
        matrix(l, N("%sffn.experts.%d.w2", p, e), D, c->moe_inter, 1);
        matrix(l, N("%sffn.experts.%d.w3", p, e), c->moe_inter, D, 1);
    }
    if (c->n_shared_experts > 0) {
        int64_t I = (int64_t)c->n_shared_experts * c->moe_inter;
        matrix(l, N("%sffn.shared_experts.w1", p), I, D, 0);
        matrix(l, N("%sffn.shared_experts.w2", p), D, I, 0);
        matrix(l, N("%sffn.shared_experts.w3", p), I, D, 0);
    }
}

static void list_all(tensor_list *l, const v4c_config *c) {
    vec_bf16(l, "embed.weight", c->vocab_size, c->hidden_size, 0, 1);
    vec_bf16(l, "head.weight", c->vocab_size, c->hidden_size, 0, 1.7320508f / sqrtf((float)c->hidden_size));
    vec_bf16(l, "norm.weight", c->hidden_size, 0, 1, 0.1f);
    hc_head(l, c, "");
    for (int i = 0; i < c->n_layers + c->n_mtp; i++) layer(l, c, i);
}

static void list_free(tensor_list *l) {
    gen_free_specs(l->t, l->n);
    free(l->fill);
    free(l->center);
    free(l->spread);
    free(l->fan_in);
}

int gen_list_tensors(const v4c_config *c, int fp8, st_write_tensor **out) {
    tensor_list l = {.fp8 = fp8};
    list_all(&l, c);
    *out = l.t;
    l.t = NULL;
    int n = l.n;
    l.n = 0;
    list_free(&l);
    return n;
}

void gen_free_specs(st_write_tensor *t, int n) {
    for (int i = 0; i < n; i++) free((char *)t[i].name);
    free(t);
}

/* ---- filling ---------------------------------------------------------------------- */

typedef struct {
    uint64_t s;
} rng;

static uint64_t next(rng *r) { /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static float uniform(rng *r) { return (float)(next(r) >> 40) / (float)(1 << 23) - 1.0f; } /* [-1, 1) */

static uint64_t name_seed(const char *name, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ULL ^ (seed * 0x9E3779B97F4A7C15ULL);
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return h | 1;
}

/* Codes whose values follow a standard normal distribution (e4m3) or a
 * normal of std ~2 (e2m1): a random byte picks one of 256 quantiles. */
static uint8_t fp8_codes[256], fp4_codes[256];

static void init_code_tables(void) {
    rng r = {12345};
    for (int i = 0; i < 256; i++) {
        /* Box-Muller from a fixed generator: deterministic tables. */
        double u1 = ((next(&r) >> 11) + 0.5) / 9007199254740992.0, u2 = (next(&r) >> 11) / 9007199254740992.0;
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        fp8_codes[i] = e4m3_encode((float)z);
        fp4_codes[i] = e2m1_encode((float)(2 * z));
    }
}

/* Power-of-two scale so code values (std ~1, or ~2 for e2m1) times the
 * scale have std ~ 1/sqrt(fan_in). */
static uint8_t scale_code(int64_t fan_in, float code_std) {
    return e8m0_encode_pow2(exp2f(rintf(log2f(1.0f / sqrtf((float)fan_in) / code_std))));
}

static int write_tensor(FILE *f, const tensor_list *l, int i, uint64_t seed, const v4c_config *c) {
    const st_write_tensor *t = &l->t[i];
    size_t total = st_tensor_bytes(t), chunk = 1 << 20;
    if (l->fill[i] == FILL_TID2EID) chunk = (size_t)8 * c->n_experts_per_tok * 8192; /* whole rows per chunk */
    uint8_t *buf = xmalloc(chunk);
    rng r = {name_seed(t->name, seed)};
    int ok = 1;
    for (size_t done = 0; ok && done < total; done += chunk) {
        size_t n = total - done < chunk ? total - done : chunk;
        switch (l->fill[i]) {
        case FILL_F32:
            for (size_t k = 0; k < n / 4; k++) ((float *)buf)[k] = l->center[i] + l->spread[i] * uniform(&r);
            break;
        case FILL_BF16:
            for (size_t k = 0; k < n / 2; k++) {
                union { float f; uint32_t u; } v = {l->center[i] + l->spread[i] * uniform(&r)};
                ((uint16_t *)buf)[k] = (uint16_t)((v.u + 0x7FFF + ((v.u >> 16) & 1)) >> 16);
            }
            break;
        case FILL_FP8:
            for (size_t k = 0; k < n; k += 8) {
                uint64_t bits = next(&r);
                for (size_t b = 0; b < 8 && k + b < n; b++, bits >>= 8) buf[k + b] = fp8_codes[bits & 0xFF];
            }
            break;
        case FILL_FP4: /* two e2m1 codes per byte, even index in the low nibble */
            for (size_t k = 0; k < n; k += 4) {
                uint64_t bits = next(&r);
                for (size_t b = 0; b < 4 && k + b < n; b++, bits >>= 16)
                    buf[k + b] = (uint8_t)((fp4_codes[bits & 0xFF] & 15) | (fp4_codes[(bits >> 8) & 0xFF] & 15) << 4);
            }
            break;
        case FILL_FP8_SCALE:
            memset(buf, scale_code(l->fan_in[i], 1.0f), n);
            break;
        case FILL_FP4_SCALE:
            memset(buf, scale_code(l->fan_in[i], 2.0f), n);
            break;
        case FILL_TID2EID: {
            /* k distinct experts per token */
            int K = c->n_experts_per_tok, E = c->n_routed_experts;
            int64_t *e = (int64_t *)buf;
            for (size_t k = 0; k < n / 8; k += K)
                for (int j = 0; j < K; j++) {
                    int64_t pick;
                    int dup;
                    do {
                        pick = (int64_t)(next(&r) % (uint64_t)E);
                        dup = 0;
                        for (int q = 0; q < j; q++) dup |= e[k + q] == pick;
                    } while (dup && K <= E);
                    e[k + j] = pick;
                }
            break;
        }
        }
        ok = fwrite(buf, 1, n, f) == n;
    }
    free(buf);
    return ok ? 0 : -1;
}

static int write_shard(const char *path, const tensor_list *l, int a, int b, uint64_t seed, const v4c_config *c, char *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return v4c_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int ok = st_write_header(f, l->t + a, b - a) == 0;
    for (int i = a; ok && i < b; i++) ok = write_tensor(f, l, i, seed, c) == 0;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : v4c_fail(err, "%s: write failed (disk full?)", path);
}

int generate_model(const v4c_config *c, const gen_params *p, const char *dir, char *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config_save(c, path, p->fp8, err)) return -1;
    static int tables_ready;
    if (!tables_ready) init_code_tables(), tables_ready = 1;
    tensor_list l = {.fp8 = p->fp8};
    list_all(&l, c);
    size_t total = 0;
    for (int i = 0; i < l.n; i++) total += st_tensor_bytes(&l.t[i]);
    int shards = p->n_shards > 0 ? p->n_shards : (int)(total / (4ULL << 30)) + 1;
    if (shards > l.n) shards = l.n;
    int rc = 0;
    if (shards == 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = write_shard(path, &l, 0, l.n, p->seed, c, err);
    } else {
        /* Shard k ends at the first tensor that takes it past k+1 shares. */
        json_t *map = json_object();
        size_t per = total / shards + 1, acc = 0;
        for (int a = 0, i = 0, s = 0; s < shards && !rc; s++) {
            while (i < l.n && (acc < per * (s + 1) || s == shards - 1)) acc += st_tensor_bytes(&l.t[i++]);
            char file[64];
            snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, shards);
            snprintf(path, sizeof path, "%s/%s", dir, file);
            for (int k = a; k < i; k++) json_object_set_new(map, l.t[k].name, json_string(file));
            rc = write_shard(path, &l, a, i, p->seed, c, err);
            a = i;
        }
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        json_t *root = json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map);
        if (!rc && json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS)) rc = v4c_fail(err, "%s: cannot write", path);
        json_decref(root);
    }
    list_free(&l);
    return rc;
}
