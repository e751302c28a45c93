/* DeepSeekMoE, MODEL.md §5: sqrt-softplus router, bias-adjusted (or
 * hash) top-k, weights from the raw scores, SwiGLU with a clamp, the routing
 * weight applied before w2, plus the shared expert. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"
#include "util/workmem.h"

/* out[n, D] += Expert(x) * g for the n tokens given (rows of x). */
static void expert_forward(const v4c_config *c, const expert_weights *e, const float *x, const float *g, int n, float *y) {
    int inter = e->w1.rows, D = c->hidden_size;
    float lim = c->swiglu_limit;
    float *h1 = work_alloc((size_t)n * inter * sizeof(float)), *h3 = work_alloc((size_t)n * inter * sizeof(float));
    float *owned;
    const float *xin = linear_input(&e->w1, x, n, &owned); /* w1 and w3 share one quantized input */
    matmul(h1, inter, &e->w1, 0, inter, xin, D, n);
    matmul(h3, inter, &e->w3, 0, inter, xin, D, n);
    work_free(owned);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < inter; i++) {
            size_t k = (size_t)j * inter + i;
            float up = fminf(fmaxf(h3[k], -lim), lim);
            h1[k] = up * siluf(fminf(h1[k], lim)) * (g ? g[j] : 1.0f);
        }
    linear(y, &e->w2, h1, n);
    work_free(h1);
    work_free(h3);
}

void moe_forward(const v4c_model *m, const layer_weights *w, const float *x, const int32_t *ids, int n, float *out) {
    const v4c_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->n_experts_per_tok, D = c->hidden_size;
    float *s = work_alloc((size_t)n * E * sizeof(float));
    linear(s, &w->gate, x, n);
    int *idx = work_alloc((size_t)n * K * sizeof(int));
    float *g = work_alloc((size_t)n * K * sizeof(float)), *biased = work_alloc((size_t)E * sizeof(float));
    for (int j = 0; j < n; j++) {
        float *sj = s + (size_t)j * E;
        for (int e = 0; e < E; e++) sj[e] = sqrtf(softplusf(sj[e]));
        int *ij = idx + (size_t)j * K;
        if (w->is_hash) {
            for (int k = 0; k < K; k++) ij[k] = w->tid2eid[(size_t)ids[j] * K + k];
        } else {
            for (int e = 0; e < E; e++) biased[e] = sj[e] + w->gate_bias[e];
            topk_indices(biased, E, K, ij);
        }
        float sum = 0;
        for (int k = 0; k < K; k++) sum += sj[ij[k]];
        for (int k = 0; k < K; k++) g[(size_t)j * K + k] = sj[ij[k]] / sum * c->route_scale;
    }

    /* Group tokens by expert so each expert's weights are read once. */
    memset(out, 0, (size_t)n * D * sizeof(float));
    float *xe = work_alloc((size_t)n * D * sizeof(float)), *ye = work_alloc((size_t)n * D * sizeof(float));
    float *ge = work_alloc((size_t)n * sizeof(float));
    int *tok = work_alloc((size_t)n * sizeof(int));
    for (int e = 0; e < E; e++) {
        int cnt = 0;
        for (int j = 0; j < n; j++)
            for (int k = 0; k < K; k++)
                if (idx[(size_t)j * K + k] == e) {
                    tok[cnt] = j;
                    ge[cnt] = g[(size_t)j * K + k];
                    memcpy(xe + (size_t)cnt * D, x + (size_t)j * D, D * sizeof(float));
                    cnt++;
                }
        if (!cnt) continue;
        expert_forward(c, &w->experts[e], xe, ge, cnt, ye);
        for (int r = 0; r < cnt; r++)
            for (int d = 0; d < D; d++) out[(size_t)tok[r] * D + d] += ye[(size_t)r * D + d];
    }
    if (c->n_shared_experts > 0) {
        expert_forward(c, &w->shared, x, NULL, n, ye);
        for (size_t i = 0; i < (size_t)n * D; i++) out[i] += ye[i];
    }
    work_free(tok);
    work_free(ge);
    work_free(ye);
    work_free(xe);
    work_free(biased);
    work_free(g);
    work_free(idx);
    work_free(s);
}
