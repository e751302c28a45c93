/* The forward pass, one function per sublayer, each next to its MODEL.md
 * section. Activations are row-major [n, ...] float32 over a batch of n
 * rows, which may hold several sequences (continuous batching): sequence k
 * owns rows [start, start+n) at positions pos0.. and has its own caches. */
#ifndef V4C_FORWARD_H
#define V4C_FORWARD_H

#include "model/cache.h"
#include "model/model.h"

typedef struct {
    layer_cache *caches; /* indexed by layer */
    int pos0, start, n;
} batch_seq;

typedef struct {
    const batch_seq *seqs;
    int n_seq, n;  /* sequences, rows */
    int *pos;      /* [n] absolute position of each row */
    int *seq_of;   /* [n] its sequence */
} batch;

/* Fill pos/seq_of (allocated here; batch_free releases them). */
void batch_init(batch *b, const batch_seq *seqs, int n_seq);
void batch_free(batch *b);

/* §3 mHC. X is [n, hc, D]. hc_pre writes y [n, D], post [n, hc] and the
 * Sinkhorn-normalised comb [n, hc, hc]; hc_post updates X in place. */
void hc_pre(const v4c_config *c, const hc_weights *w, const float *X, int n, float *y, float *post, float *comb);
void hc_post(const v4c_config *c, float *X, const float *a, const float *post, const float *comb, int n);
/* Softmax rows + eps, then alternate column/row normalisation (§3). */
void hc_sinkhorn(float *C, int hc, int iters, float eps);
/* HC head: [n, hc, D] -> [n, D] (before the final norm). */
void hc_head(const v4c_config *c, const hc_head_weights *w, const float *X, int n, float *y);

/* §4 compressor: k_t, s_t of the batch's rows x, consumed by each
 * sequence's cache of this layer (the indexer's when for_indexer);
 * finished entries are appended. */
void compressor_forward(const v4c_config *c, const compressor_weights *w, const batch *b, int layer, const float *x, const float *rope_freqs,
                        int for_indexer);

/* §4 attention sublayer: x [n, D] -> out [n, D]. */
void attention_forward(const v4c_model *m, const layer_weights *w, const batch *b, const float *x, float *out);

/* §4 lightning indexer: for each token, the selected compressed entries.
 * sel [n, topk] gets entry indices, n_sel [n] their count. */
void indexer_select(const v4c_model *m, const layer_weights *w, const batch *b, const float *x, const float *q_lat, int *sel, int *n_sel);

/* §5 MoE sublayer: x [n, D] -> out [n, D]; ids route hash layers. */
void moe_forward(const v4c_model *m, const layer_weights *w, const float *x, const int32_t *ids, int n, float *out);

/* One block (attention then FFN, each wrapped in mHC) over X [n, hc, D]. */
void block_forward(const v4c_model *m, const layer_weights *w, const batch *b, float *X, const int32_t *ids);

#endif
