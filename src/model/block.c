/* One transformer block: attention then MoE, each sublayer wrapped in mHC. */
#include <stdlib.h>

#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"
#include "util/workmem.h"

void batch_init(batch *b, const batch_seq *seqs, int n_seq) {
    b->seqs = seqs;
    b->n_seq = n_seq;
    b->n = 0;
    for (int k = 0; k < n_seq; k++) b->n += seqs[k].n;
    b->pos = xmalloc((size_t)b->n * sizeof(int));
    b->seq_of = xmalloc((size_t)b->n * sizeof(int));
    for (int k = 0; k < n_seq; k++)
        for (int i = 0; i < seqs[k].n; i++) {
            b->pos[seqs[k].start + i] = seqs[k].pos0 + i;
            b->seq_of[seqs[k].start + i] = k;
        }
}

void batch_free(batch *b) {
    free(b->pos);
    free(b->seq_of);
}

void block_forward(const v4c_model *m, const layer_weights *w, const batch *b, float *X, const int32_t *ids) {
    const v4c_config *c = &m->cfg;
    int hc = c->hc_mult, D = c->hidden_size, n = b->n;
    float *y = work_alloc((size_t)n * D * sizeof(float)), *a = work_alloc((size_t)n * D * sizeof(float));
    float *post = work_alloc((size_t)n * hc * sizeof(float)), *comb = work_alloc((size_t)n * hc * hc * sizeof(float));

    hc_pre(c, &w->hc_attn, X, n, y, post, comb);
    for (int i = 0; i < n; i++) rmsnorm(y + (size_t)i * D, y + (size_t)i * D, w->attn_norm, D, c->norm_eps);
    attention_forward(m, w, b, y, a);
    hc_post(c, X, a, post, comb, n);

    hc_pre(c, &w->hc_ffn, X, n, y, post, comb);
    for (int i = 0; i < n; i++) rmsnorm(y + (size_t)i * D, y + (size_t)i * D, w->ffn_norm, D, c->norm_eps);
    moe_forward(m, w, y, ids, n, a);
    hc_post(c, X, a, post, comb, n);

    work_free(comb);
    work_free(post);
    work_free(a);
    work_free(y);
}
