/* The trainable model: every parameter in one contiguous buffer with a table
 * of named tensors (the official checkpoint names), gradients and optimizer
 * state mirroring it (llm.c style). Shapes follow MODEL.md / weights.c. */
#ifndef V4C_TRAIN_PARAMS_H
#define V4C_TRAIN_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "train/real.h"
#include "v4c.h"

typedef enum { OPT_ADAMW, OPT_MUON, OPT_NONE } opt_kind; /* NONE: gate bias (bias updates, not gradients) */

typedef struct {
    char name[96];
    int rows, cols;   /* cols 0: a vector of `rows` */
    size_t offset;    /* into params/grads */
    opt_kind opt;
    int save_f32;     /* stored F32 in the checkpoint (hc_*, ape, sink, bias); else BF16 */
    int is_indexer;   /* lightning-indexer parameter (trained by its KL loss only) */
} param_info;

/* mHC parameters of one sublayer (offsets). */
typedef struct { size_t fn, base, scale; } tr_hc;

typedef struct {
    int ratio, dim, overlap; /* m, d, c */
    size_t wkv, wgate, ape, norm;
} tr_compressor;

typedef struct {
    int index, ratio, is_hash, is_mtp;
    float *rope_freqs; /* R/2 */
    tr_hc hc_attn, hc_ffn;
    size_t attn_norm, ffn_norm;
    size_t wq_a, q_norm, wq_b, wkv, kv_norm, wo_a, wo_b, attn_sink;
    tr_compressor comp;
    size_t iwq_b, iweights_proj; /* indexer */
    tr_compressor icomp;
    size_t gate, gate_bias;      /* gate_bias: non-hash layers */
    int32_t *tid2eid;            /* hash layers: [vocab, k] */
    size_t *w1, *w2, *w3;        /* routed experts, n_routed each */
    size_t sw1, sw2, sw3;        /* shared expert */
    size_t e_proj, h_proj, enorm, hnorm, norm; /* MTP */
    tr_hc hc_head;
} tr_layer;

typedef struct {
    v4c_config cfg;
    param_info *info;
    int n_info;
    size_t n_params;
    real *params, *grads;
    size_t embed, head, norm;
    tr_hc hc_head;
    tr_layer *layers; /* n_layers + n_mtp */
} tr_model;

/* Build the table for cfg and allocate params/grads (zeroed). */
void tr_model_init(tr_model *m, const v4c_config *cfg);
void tr_model_free(tr_model *m);
/* Random initialisation (TRAINING.md: mHC fn ~ N(0,0.02), base 0, scale
 * 0.01; matrices ~ N(0, 1/in); norms 1; hash tables random). */
void tr_model_randomize(tr_model *m, uint64_t seed);
/* Load every tensor from an HF checkpoint directory (BF16/F32 values). */
int tr_model_load(tr_model *m, const char *dir, char *err);
/* Write config.json + model.safetensors: BF16 matrices and F32 small
 * tensors, or (quantized) the released format: FP8 e4m3 with ue8m0 128x128
 * block scales, FP4 routed experts. */
int tr_model_save(const tr_model *m, const char *dir, int quantized, char *err);
const param_info *tr_model_find(const tr_model *m, const char *name);

#define P(m, off) ((m)->params + (off))
#define G(m, off) ((m)->grads + (off))

#endif
