/* One transformer block: attention then MoE, each sublayer wrapped in mHC. */
#include <stdlib.h>

#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"

void block_forward(const v4c_model *m, const layer_weights *w, layer_cache *lc, float *X, const int32_t *ids, int n, int pos0) {
    const v4c_config *c = &m->cfg;
    int hc = c->hc_mult, D = c->hidden_size;
    float *y = xmalloc((size_t)n * D * sizeof(float)), *a = xmalloc((size_t)n * D * sizeof(float));
    float *post = xmalloc((size_t)n * hc * sizeof(float)), *comb = xmalloc((size_t)n * hc * hc * sizeof(float));

    hc_pre(c, &w->hc_attn, X, n, y, post, comb);
    for (int i = 0; i < n; i++) rmsnorm(y + (size_t)i * D, y + (size_t)i * D, w->attn_norm, D, c->norm_eps);
    attention_forward(m, w, lc, y, n, pos0, a);
    hc_post(c, X, a, post, comb, n);

    hc_pre(c, &w->hc_ffn, X, n, y, post, comb);
    for (int i = 0; i < n; i++) rmsnorm(y + (size_t)i * D, y + (size_t)i * D, w->ffn_norm, D, c->norm_eps);
    moe_forward(m, w, y, ids, n, a);
    hc_post(c, X, a, post, comb, n);

    free(comb);
    free(post);
    free(a);
    free(y);
}
