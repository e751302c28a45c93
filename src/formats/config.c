#include "formats/config.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int get_num(json_t *obj, const char *key, const char *path, const char *where, double *out, int required, char *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) return v4c_fail(err, "%s: missing key '%s%s'", path, where, key);
        return 1;
    }
    if (!json_is_number(v)) return v4c_fail(err, "%s: key '%s%s' must be a number", path, where, key);
    *out = json_number_value(v);
    return 0;
}

static int get_int(json_t *obj, const char *key, const char *path, int *out, int min, char *err) {
    double d = 0;
    if (get_num(obj, key, path, "", &d, 1, err)) return -1;
    if (d != floor(d) || d < min || d > 1e9) return v4c_fail(err, "%s: key '%s' must be an integer >= %d (got %g)", path, key, min, d);
    *out = (int)d;
    return 0;
}

static int get_float(json_t *obj, const char *key, const char *path, const char *where, float *out, char *err) {
    double d = 0;
    if (get_num(obj, key, path, where, &d, 1, err)) return -1;
    *out = (float)d;
    return 0;
}

static int is_pow2(int x) { return x > 0 && (x & (x - 1)) == 0; }

static int validate(const v4c_config *c, const char *path, char *err) {
#define REQUIRE(cond, ...) \
    do { \
        if (!(cond)) return v4c_fail(err, __VA_ARGS__); \
    } while (0)
    REQUIRE(c->rope_dim <= 1024, "%s: qk_rope_head_dim (%d) must be at most 1024 (ROPE_MAX, kernels/ops.h)", path, c->rope_dim);
    REQUIRE(c->rope_dim % 2 == 0 && c->rope_dim <= c->head_dim, "%s: qk_rope_head_dim (%d) must be even and <= head_dim (%d)", path, c->rope_dim, c->head_dim);
    REQUIRE(c->rope_dim <= c->index_head_dim, "%s: qk_rope_head_dim (%d) must be <= index_head_dim (%d)", path, c->rope_dim, c->index_head_dim);
    REQUIRE((c->head_dim - c->rope_dim) % 64 == 0, "%s: head_dim - qk_rope_head_dim (%d) must be a multiple of 64 (FP8 kv blocks)", path, c->head_dim - c->rope_dim);
    REQUIRE(is_pow2(c->index_head_dim) && c->index_head_dim >= 32, "%s: index_head_dim (%d) must be a power of two >= 32 (Hadamard, FP4 blocks)", path, c->index_head_dim);
    REQUIRE(c->n_heads % c->o_groups == 0, "%s: num_attention_heads (%d) must be a multiple of o_groups (%d)", path, c->n_heads, c->o_groups);
    REQUIRE(c->n_experts_per_tok <= c->n_routed_experts, "%s: num_experts_per_tok (%d) exceeds n_routed_experts (%d)", path, c->n_experts_per_tok, c->n_routed_experts);
    REQUIRE(c->n_hash_layers <= c->n_layers, "%s: num_hash_layers (%d) exceeds num_hidden_layers (%d)", path, c->n_hash_layers, c->n_layers);
    REQUIRE(c->n_layers + c->n_mtp <= V4C_MAX_LAYERS, "%s: %d layers + MTP blocks exceed the supported %d", path, c->n_layers + c->n_mtp, V4C_MAX_LAYERS);
    REQUIRE(c->hc_sinkhorn_iters >= 1, "%s: hc_sinkhorn_iters must be >= 1", path);
    REQUIRE(c->hc_mult <= 16, "%s: hc_mult (%d) must be at most 16", path, c->hc_mult);
    REQUIRE(c->norm_eps > 0 && c->hc_eps >= 0, "%s: rms_norm_eps must be > 0 and hc_eps >= 0", path);
    REQUIRE(c->rope_theta > 0 && c->compress_rope_theta > 0, "%s: rope_theta and compress_rope_theta must be > 0", path);
    REQUIRE(c->yarn_orig_max_pos == 0 || c->yarn_factor > 0, "%s: rope_scaling.factor must be > 0", path);
    REQUIRE(c->route_scale > 0 && c->swiglu_limit > 0, "%s: routed_scaling_factor and swiglu_limit must be > 0", path);
    return 0;
#undef REQUIRE
}

int config_parse(v4c_config *c, const char *text, const char *path, char *err) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root) return v4c_fail(err, "%s: JSON does not parse: %s (line %d, column %d)", path, jerr.text, jerr.line, jerr.column);
    int rc = -1;
    if (!json_is_object(root)) {
        v4c_fail(err, "%s: top level must be a JSON object", path);
        goto out;
    }
    static const struct { const char *key; size_t off; int min; } ints[] = {
#define F(k, field, min) {k, offsetof(v4c_config, field), min}
        F("vocab_size", vocab_size, 2), F("hidden_size", hidden_size, 1),
        F("num_hidden_layers", n_layers, 1), F("num_nextn_predict_layers", n_mtp, 0),
        F("num_attention_heads", n_heads, 1), F("head_dim", head_dim, 2),
        F("qk_rope_head_dim", rope_dim, 0), F("q_lora_rank", q_lora_rank, 1),
        F("o_groups", o_groups, 1), F("o_lora_rank", o_lora_rank, 1),
        F("sliding_window", window, 1), F("index_n_heads", index_n_heads, 1),
        F("index_head_dim", index_head_dim, 1), F("index_topk", index_topk, 1),
        F("n_routed_experts", n_routed_experts, 1), F("num_experts_per_tok", n_experts_per_tok, 1),
        F("n_shared_experts", n_shared_experts, 0), F("moe_intermediate_size", moe_inter, 1),
        F("num_hash_layers", n_hash_layers, 0), F("hc_mult", hc_mult, 1),
        F("hc_sinkhorn_iters", hc_sinkhorn_iters, 1),
#undef F
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (get_int(root, ints[i].key, path, (int *)((char *)c + ints[i].off), ints[i].min, err)) goto out;
    static const struct { const char *key; size_t off; } floats[] = {
#define F(k, field) {k, offsetof(v4c_config, field)}
        F("routed_scaling_factor", route_scale), F("swiglu_limit", swiglu_limit),
        F("hc_eps", hc_eps), F("rope_theta", rope_theta),
        F("compress_rope_theta", compress_rope_theta), F("rms_norm_eps", norm_eps),
#undef F
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if (get_float(root, floats[i].key, path, "", (float *)((char *)c + floats[i].off), err)) goto out;

    json_t *sf = json_object_get(root, "scoring_func");
    if (!sf) {
        v4c_fail(err, "%s: missing key 'scoring_func'", path);
        goto out;
    }
    if (!json_is_string(sf) || strcmp(json_string_value(sf), "sqrtsoftplus")) {
        v4c_fail(err, "%s: key 'scoring_func' must be \"sqrtsoftplus\"", path);
        goto out;
    }

    json_t *cr = json_object_get(root, "compress_ratios");
    if (!json_is_array(cr)) {
        v4c_fail(err, "%s: %s key 'compress_ratios'", path, cr ? "non-array" : "missing");
        goto out;
    }
    if ((int)json_array_size(cr) != c->n_layers + c->n_mtp && (int)json_array_size(cr) != c->n_layers) {
        v4c_fail(err, "%s: compress_ratios has %zu entries, expected num_hidden_layers + num_nextn_predict_layers = %d", path, json_array_size(cr), c->n_layers + c->n_mtp);
        goto out;
    }
    if (c->n_layers + c->n_mtp > V4C_MAX_LAYERS) {
        v4c_fail(err, "%s: %d layers exceed the supported %d", path, c->n_layers + c->n_mtp, V4C_MAX_LAYERS);
        goto out;
    }
    for (int i = 0; i < c->n_layers + c->n_mtp; i++) {
        /* A list of only the main layers leaves the MTP blocks window-only. */
        json_t *e = json_array_get(cr, i);
        if (!e) continue;
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) == 1 || json_integer_value(e) > 1 << 20) {
            v4c_fail(err, "%s: compress_ratios[%d] must be 0 or an integer >= 2", path, i);
            goto out;
        }
        c->compress_ratios[i] = (int)json_integer_value(e);
    }

    json_t *rs = json_object_get(root, "rope_scaling");
    if (!json_is_object(rs)) {
        v4c_fail(err, "%s: %s key 'rope_scaling'", path, rs ? "non-object" : "missing");
        goto out;
    }
    double omp;
    if (get_num(rs, "original_max_position_embeddings", path, "rope_scaling.", &omp, 1, err)) goto out;
    if (omp < 0 || omp != floor(omp)) {
        v4c_fail(err, "%s: rope_scaling.original_max_position_embeddings must be an integer >= 0", path);
        goto out;
    }
    c->yarn_orig_max_pos = (int)omp;
    if (get_float(rs, "factor", path, "rope_scaling.", &c->yarn_factor, err) ||
        get_float(rs, "beta_fast", path, "rope_scaling.", &c->yarn_beta_fast, err) ||
        get_float(rs, "beta_slow", path, "rope_scaling.", &c->yarn_beta_slow, err))
        goto out;

    double d = 0;
    c->max_position_embeddings = get_num(root, "max_position_embeddings", path, "", &d, 0, err) == 0 ? (int)d : 0;
    c->bos_token_id = get_num(root, "bos_token_id", path, "", &d, 0, err) == 0 ? (int)d : -1;
    c->eos_token_id = get_num(root, "eos_token_id", path, "", &d, 0, err) == 0 ? (int)d : -1;
    rc = validate(c, path, err);
out:
    json_decref(root);
    return rc;
}

int config_load(v4c_config *c, const char *path, char *err) {
    char *text = read_file(path, NULL, err);
    if (!text) return -1;
    int rc = config_parse(c, text, path, err);
    free(text);
    return rc;
}

int config_save(const v4c_config *c, const char *path, int fp8, char *err) {
    json_t *ratios = json_array();
    for (int i = 0; i < c->n_layers + c->n_mtp; i++) json_array_append_new(ratios, json_integer(c->compress_ratios[i]));
    json_t *j = json_pack(
        "{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:o,s:f,s:f,"
        "s:{s:s,s:f,s:i,s:f,s:f},s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:f,s:b,s:s,s:f,s:i,s:i,s:f,s:f,s:s,s:i,s:b,s:s}",
        "architectures", "DeepseekV4ForCausalLM", "model_type", "deepseek_v4", "bos_token_id", c->bos_token_id,
        "eos_token_id", c->eos_token_id, "vocab_size", c->vocab_size, "hidden_size", c->hidden_size,
        "num_hidden_layers", c->n_layers, "num_nextn_predict_layers", c->n_mtp, "num_hash_layers", c->n_hash_layers,
        "num_attention_heads", c->n_heads, "num_key_value_heads", 1, "head_dim", c->head_dim, "qk_rope_head_dim", c->rope_dim,
        "q_lora_rank", c->q_lora_rank, "o_groups", c->o_groups, "o_lora_rank", c->o_lora_rank, "sliding_window", c->window,
        "compress_ratios", ratios, "compress_rope_theta", (double)c->compress_rope_theta, "rope_theta", (double)c->rope_theta,
        "rope_scaling", "type", "yarn", "factor", (double)c->yarn_factor, "original_max_position_embeddings", c->yarn_orig_max_pos,
        "beta_fast", (double)c->yarn_beta_fast, "beta_slow", (double)c->yarn_beta_slow, "index_n_heads", c->index_n_heads,
        "index_head_dim", c->index_head_dim, "index_topk", c->index_topk, "n_routed_experts", c->n_routed_experts,
        "n_shared_experts", c->n_shared_experts, "num_experts_per_tok", c->n_experts_per_tok, "moe_intermediate_size", c->moe_inter,
        "scoring_func", "sqrtsoftplus", "routed_scaling_factor", (double)c->route_scale, "norm_topk_prob", 1, "topk_method",
        "noaux_tc", "swiglu_limit", (double)c->swiglu_limit, "hc_mult", c->hc_mult, "hc_sinkhorn_iters", c->hc_sinkhorn_iters,
        "hc_eps", (double)c->hc_eps, "rms_norm_eps", (double)c->norm_eps, "hidden_act", "silu", "max_position_embeddings",
        c->max_position_embeddings, "tie_word_embeddings", 0, "torch_dtype", "bfloat16");
    if (!j) return v4c_fail(err, "%s: could not build the config JSON", path);
    if (fp8) {
        json_object_set_new(j, "expert_dtype", json_string("fp4"));
        json_object_set_new(j, "quantization_config",
                            json_pack("{s:s,s:s,s:s,s:s,s:[i,i]}", "activation_scheme", "dynamic", "fmt", "e4m3", "quant_method", "fp8",
                                      "scale_fmt", "ue8m0", "weight_block_size", 128, 128));
    }
    int rc = json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(j);
    return rc ? v4c_fail(err, "%s: cannot write", path) : 0;
}
