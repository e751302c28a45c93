/* v4c — DeepSeek-V4 in C. The public API.
 *
 * Errors are values: a function that can fail returns NULL or a negative
 * number and writes one line into the caller's `err` buffer (V4C_ERR_LEN
 * bytes) naming the file, tensor or key and what was expected. */
#ifndef V4C_H
#define V4C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define V4C_ERR_LEN 512
#define V4C_MAX_LAYERS 256

/* ---- configuration (config.json, MODEL.md §1) ---------------------------- */
typedef struct v4c_config {
    int vocab_size;
    int hidden_size;          /* D */
    int n_layers;             /* L, main layers */
    int n_mtp;                /* MTP blocks */
    int n_heads;              /* H query heads, one shared KV head */
    int head_dim;             /* Dh */
    int rope_dim;             /* R: trailing dims that carry RoPE */
    int q_lora_rank;
    int o_groups, o_lora_rank;
    int window;               /* sliding window */
    int compress_ratios[V4C_MAX_LAYERS]; /* n_layers + n_mtp entries */
    int index_n_heads, index_head_dim, index_topk;
    int n_routed_experts, n_experts_per_tok, n_shared_experts;
    int moe_inter;            /* moe_intermediate_size */
    int n_hash_layers;
    float route_scale;        /* routed_scaling_factor */
    float swiglu_limit;
    int hc_mult, hc_sinkhorn_iters;
    float hc_eps;
    float rope_theta, compress_rope_theta;
    float yarn_factor;
    int yarn_orig_max_pos;    /* 0 = no YaRN */
    float yarn_beta_fast, yarn_beta_slow;
    float norm_eps;
    int max_position_embeddings; /* 0 if absent */
    int bos_token_id, eos_token_id; /* -1 if absent */
} v4c_config;

/* ---- model ---------------------------------------------------------------- */
typedef struct v4c_model v4c_model;

/* Open a Hugging Face model directory (config.json + model.safetensors or
 * shards with model.safetensors.index.json). Weights are memory-mapped and
 * used in their stored dtype. */
v4c_model *v4c_model_open(const char *dir, char err[V4C_ERR_LEN]);
void v4c_model_free(v4c_model *m);
const v4c_config *v4c_model_config(const v4c_model *m);

/* Parameter counts by kind (logical weight elements; scales counted apart). */
typedef struct v4c_model_stats {
    int64_t params_embed;     /* embedding + output head */
    int64_t params_attn;      /* q/kv/o projections, norms, sinks */
    int64_t params_compress;  /* compressors and lightning indexers */
    int64_t params_routed;    /* routed experts */
    int64_t params_shared;    /* shared experts + routers */
    int64_t params_hc;        /* mHC mixing (+ heads) */
    int64_t params_mtp;       /* everything in the MTP blocks */
    int64_t params_other;     /* final norm */
    int64_t params_total;
    int64_t scale_elems;      /* FP8/FP4 block-scale elements */
    int64_t bytes_on_disk;    /* sum of safetensors file sizes */
    int64_t bytes_weights;    /* bytes of the tensors the model uses */
    int n_tensors_used, n_tensors_ignored;
    /* KV cache: bytes that grow with each token (compressed + indexer
     * entries, all layers) and fixed bytes (windows, compressor tails). */
    double kv_bytes_per_token;
    int64_t kv_fixed_bytes;
} v4c_model_stats;
void v4c_model_get_stats(const v4c_model *m, v4c_model_stats *st);

/* ---- sessions: one sequence with its caches (MODEL.md §7) ------------------ */
typedef struct v4c_session v4c_session;

typedef struct v4c_session_params {
    int max_ctx;   /* 0 = max_position_embeddings from the config (or 4096) */
    int use_mtp;   /* keep the MTP block's caches in step with the main model */
} v4c_session_params;

v4c_session *v4c_session_new(v4c_model *m, const v4c_session_params *p, char err[V4C_ERR_LEN]);
void v4c_session_free(v4c_session *s);
int v4c_session_pos(const v4c_session *s); /* tokens consumed so far */
int v4c_session_max_ctx(const v4c_session *s);
int v4c_session_vocab(const v4c_session *s);
int v4c_session_uses_mtp(const v4c_session *s);

/* Feed n tokens at the current position (any n >= 1: a prefill chunk or one
 * decode step). If logits is non-NULL it receives vocab_size floats: the
 * next-token logits at the last fed position. Returns 0 or -1 (err set). */
int v4c_session_feed(v4c_session *s, const int32_t *ids, int n, float *logits, char err[V4C_ERR_LEN]);

/* Like v4c_session_feed, but logits receives n rows: the next-token logits
 * after every fed position (used to verify speculative drafts). */
int v4c_session_feed_all(v4c_session *s, const int32_t *ids, int n, float *logits, char err[V4C_ERR_LEN]);

/* Continuous batching: one forward pass for several sessions of the same
 * model, counts[k] tokens for session k (ids concatenated; a decode step
 * is 1, a prefill chunk more). logits (if non-NULL) gets one row per
 * session: the next-token logits after its last token. Each session keeps
 * its own caches; results equal feeding each session alone. */
int v4c_batch_feed(v4c_session **s, const int32_t *ids, const int *counts, int n_seq, float *logits, char err[V4C_ERR_LEN]);

/* Run the MTP block at the last fed position, given the token that follows
 * it; writes vocab_size logits predicting the token after next. Requires
 * use_mtp. Returns 0 or -1. */
int v4c_session_mtp(v4c_session *s, int32_t next_id, float *logits, char err[V4C_ERR_LEN]);

/* Take back the last n fed tokens (n <= V4C_MAX_ROLLBACK): every cache,
 * including compressor state, indexer entries and the MTP block's, returns
 * exactly to what it was. */
#define V4C_MAX_ROLLBACK 2
int v4c_session_rollback(v4c_session *s, int n, char err[V4C_ERR_LEN]);

/* A deep copy (a snapshot to return to later). */
v4c_session *v4c_session_clone(const v4c_session *s);

/* Forget everything (position 0), keeping the allocations. */
void v4c_session_reset(v4c_session *s);

/* Bytes of cache the next decode step reads (window, selected compressed
 * entries, indexer entries scanned), main layers. */
double v4c_session_cache_read_bytes(const v4c_session *s);
/* Bytes the caches hold now (main layers). */
double v4c_session_cache_bytes(const v4c_session *s);

/* The token ids fed so far (n = v4c_session_pos). */
const int32_t *v4c_session_tokens(const v4c_session *s);

/* Saved sessions: the caches on disk with a header (format version, model
 * fingerprint, token ids) and a checksum. Loading refuses a file from
 * another model, a corrupt or truncated one, with a message saying which. */
int v4c_session_save(const v4c_session *s, const char *path, char err[V4C_ERR_LEN]);
v4c_session *v4c_session_load(v4c_model *m, const char *path, const v4c_session_params *p, char err[V4C_ERR_LEN]);

/* A hash of the configuration and every tensor's name, dtype, shape and
 * leading/trailing bytes: two checkpoints with equal fingerprints hold the
 * same model. */
uint64_t v4c_model_fingerprint(const v4c_model *m);

/* ---- sampling -------------------------------------------------------------- */
typedef struct v4c_sampling {
    float temperature;        /* 0 = greedy (argmax) */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off */
    float min_p;              /* 0 = off: drop tokens below min_p * p(max) */
    float repetition_penalty; /* 1 = off: seen tokens' logits /p (>0) or *p (<0) */
    float presence_penalty;   /* 0 = off: subtracted once from seen tokens */
    uint64_t seed;
} v4c_sampling;

v4c_sampling v4c_sampling_default(void); /* greedy, filters off, seed 0 */

typedef struct v4c_sampler v4c_sampler;
v4c_sampler *v4c_sampler_new(const v4c_sampling *p, int vocab_size);
void v4c_sampler_free(v4c_sampler *s);
/* Record a token of the context (prompt or generated) for the penalties. */
void v4c_sampler_accept(v4c_sampler *s, int32_t token);
void v4c_sampler_reset(v4c_sampler *s); /* forget accepted tokens */
/* The distribution sampling draws from: penalties, temperature, softmax,
 * top-k, top-p, min-p, renormalised (one-hot on the argmax when greedy). */
void v4c_sampler_probs(v4c_sampler *s, const float *logits, float *probs);
/* Draw a token from probs (as made by v4c_sampler_probs). */
int32_t v4c_sampler_draw(v4c_sampler *s, const float *probs);
/* The token from probs: its argmax when greedy (no randomness used), else a draw. */
int32_t v4c_sampler_pick(v4c_sampler *s, const float *probs);
/* v4c_sampler_probs then v4c_sampler_pick (into the sampler's own buffer). */
int32_t v4c_sampler_sample(v4c_sampler *s, const float *logits);
/* A uniform number in [0, 1) from the sampler's generator. */
double v4c_sampler_uniform(v4c_sampler *s);
int v4c_sampler_greedy(const v4c_sampler *s);

/* ---- generation ------------------------------------------------------------- */
typedef struct v4c_generate_opts {
    int max_tokens;     /* stop after this many generated tokens */
    int batch;          /* prefill chunk (0 = all at once) */
    int use_mtp;        /* speculative decoding with the MTP block (session must use_mtp) */
    int32_t eos_id;     /* stop after emitting it (-1: never) */
    /* Called for each generated token in order; return non-zero to stop. */
    int (*on_token)(void *user, int32_t token);
    void *user;
    volatile int *interrupt; /* if non-NULL and set, stop at the next token */
} v4c_generate_opts;

typedef struct v4c_generate_stats {
    int prompt_tokens, generated;
    double prefill_seconds, decode_seconds;
    int drafted, accepted; /* MTP drafts verified / accepted */
} v4c_generate_stats;

/* Feed `prompt` (the tokens after what the session already holds; may be
 * empty if the session holds at least one token), then generate. With MTP,
 * each step verifies the MTP block's draft together with the next token in
 * one pass; greedy output is identical with and without it, and sampled
 * output keeps its distribution (speculative-sampling acceptance rule).
 * The sampler sees the prompt and generated tokens for its penalties. */
int v4c_generate(v4c_session *s, v4c_sampler *smp, const int32_t *prompt, int n_prompt, const v4c_generate_opts *o,
                 v4c_generate_stats *st, char err[V4C_ERR_LEN]);

/* ---- runtime ---------------------------------------------------------------- */
void v4c_set_threads(int n);  /* <= 0: all cores */
int v4c_get_threads(void);
void v4c_set_verbose(int level);

#ifdef __cplusplus
}
#endif

#include "v4c_text.h" /* tokenizer, chat encoding, completion parser */

#endif
