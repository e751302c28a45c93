/* The DeepSeek-V4 model: weights bound from the checkpoint (pointers into
 * the mapping), and the forward pass of MODEL.md split by sublayer. */
#ifndef V4C_MODEL_H
#define V4C_MODEL_H

#include <stdint.h>

#include "formats/safetensors.h"
#include "kernels/matrix.h"
#include "v4c.h"

/* mHC mixing parameters of one sublayer (MODEL.md §3). */
typedef struct {
    const float *fn;    /* [(2+hc)*hc, hc*D] */
    const float *base;  /* [(2+hc)*hc] */
    const float *scale; /* [3] */
} hc_weights;

/* HC head: collapses the hc streams to one before a norm and the head. */
typedef struct {
    const float *fn;    /* [hc, hc*D] */
    const float *base;  /* [hc] */
    const float *scale; /* [1] */
} hc_head_weights;

typedef struct {
    int ratio;         /* m */
    int dim;           /* d: entry width */
    int overlap;       /* c = 2 when m == 4 */
    v4c_matrix wkv, wgate; /* [c*d, D] */
    const float *ape;  /* [m, c*d] */
    const float *norm; /* [d] */
} compressor_weights;

typedef struct {
    v4c_matrix wq_b;          /* [nI*dI, q_lora_rank] */
    v4c_matrix weights_proj;  /* [nI, D] */
    compressor_weights comp;
} indexer_weights;

typedef struct {
    v4c_matrix w1, w2, w3;
} expert_weights;

typedef struct {
    int index;            /* layer number; MTP block k is L + k */
    int ratio;            /* compress ratio: 0 window only, 4 CSA, else HCA */
    int is_hash;          /* routes by token id */
    int is_mtp;
    float *rope_freqs;    /* R/2, owned */

    hc_weights hc_attn, hc_ffn;
    const float *attn_norm, *ffn_norm;

    v4c_matrix wq_a, wq_b, wkv, wo_a, wo_b;
    const float *q_norm, *kv_norm;
    const float *attn_sink;
    compressor_weights comp;
    indexer_weights indexer;

    v4c_matrix gate;
    const float *gate_bias;       /* non-hash layers */
    const int32_t *tid2eid;       /* hash layers: [vocab, k] */
    expert_weights *experts;      /* n_routed */
    expert_weights shared;        /* width n_shared * moe_inter; absent if 0 */

    /* MTP block only */
    v4c_matrix e_proj, h_proj;
    const float *enorm, *hnorm, *norm;
    hc_head_weights hc_head;
} layer_weights;

struct v4c_model {
    v4c_config cfg;
    st_set st;
    const uint16_t *embed_bf16;  /* [vocab, D], BF16 or F32 */
    const float *embed_f32;
    v4c_matrix head;             /* [vocab, D] */
    const float *norm;           /* [D] */
    hc_head_weights hc_head;
    layer_weights *layers;       /* n_layers + n_mtp */
    void **owned;                /* small tensors converted at load */
    int n_owned;
    void *head_panels;           /* the head packed in panels (pack_head), mapped */
    size_t head_panels_len;
    uint64_t fingerprint;        /* model_fingerprint, taken before any packing */
};

/* Bind every tensor the model uses (weights.c). */
int model_bind_weights(v4c_model *m, char *err);
/* The config and each used tensor's name, dtype, shape and edge bytes, hashed (v4c_model_fingerprint). */
uint64_t model_fingerprint(const v4c_model *m);
void model_free_weights(v4c_model *m);

void embed_row(const v4c_model *m, int32_t token, float *out);

#endif
