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

/* One token: the K routed experts (in increasing order, as the batch loop
 * below adds them) and the shared one, each phase in one parallel region
 * (matmul_many): w1 and w3 of all, then w2 of all. Same results as the
 * batch path: every output is its own chain whatever the grouping. */
static void experts_one_token(const v4c_config *c, const layer_weights *w, const float *x, const int *idx, const float *g, float *out) {
    int K = c->n_experts_per_tok, D = c->hidden_size, ne = K + (c->n_shared_experts > 0);
    const expert_weights *ex[ne];
    float gain[ne];
    size_t off[ne + 1];
    int order[K];
    for (int k = 0; k < K; k++) order[k] = k;
    for (int a = 1; a < K; a++) /* insertion sort of K indices by expert */
        for (int b = a; b > 0 && idx[order[b]] < idx[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    off[0] = 0;
    for (int k = 0; k < ne; k++) {
        ex[k] = k < K ? &w->experts[idx[order[k]]] : &w->shared;
        gain[k] = k < K ? g[order[k]] : 1.0f;
        off[k + 1] = off[k] + (size_t)ex[k]->w1.rows;
    }
    float *h1 = work_alloc(off[ne] * sizeof(float)), *h3 = work_alloc(off[ne] * sizeof(float));
    float *ye = work_alloc((size_t)ne * D * sizeof(float));
    matmul_job jobs[2 * ne];
    for (int k = 0; k < ne; k++) {
        jobs[2 * k] = (matmul_job){h1 + off[k], &ex[k]->w1, x, 1, 0, 0};
        jobs[2 * k + 1] = (matmul_job){h3 + off[k], &ex[k]->w3, x, 1, 0, 0};
    }
    matmul_many(jobs, 2 * ne);
    float lim = c->swiglu_limit;
    for (int k = 0; k < ne; k++) {
        for (size_t i = off[k]; i < off[k + 1]; i++) {
            float up = fminf(fmaxf(h3[i], -lim), lim);
            h1[i] = up * siluf(fminf(h1[i], lim)) * gain[k];
        }
        jobs[k] = (matmul_job){ye + (size_t)k * D, &ex[k]->w2, h1 + off[k], 1, 0, 0};
    }
    matmul_many(jobs, ne);
    memset(out, 0, (size_t)D * sizeof(float));
    for (int k = 0; k < ne; k++)
        for (int d = 0; d < D; d++) out[d] += ye[(size_t)k * D + d];
    work_free(ye);
    work_free(h3);
    work_free(h1);
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

    if (n == 1) {
        experts_one_token(c, w, x, idx, g, out);
        work_free(biased), work_free(g), work_free(idx), work_free(s);
        return;
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
