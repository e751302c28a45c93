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

/* The routed experts (in increasing order, each with its tokens) and the
 * shared one (all tokens), each phase for all experts at once
 * (matmul_many: the experts that take a few tokens share one parallel
 * region): w1 and w3, SwiGLU with the clamp and the routing weight, w2,
 * then out[t] = sum of the experts' outputs in that order. Every output is
 * its own chain whatever the grouping, so one token and a batch agree. */
static void experts_forward(const v4c_config *c, const layer_weights *w, const float *x, const int *idx, const float *g, int n, float *out) {
    int K = c->n_experts_per_tok, D = c->hidden_size, E = c->n_routed_experts, shared = c->n_shared_experts > 0;
    int ne = 0, na = 0; /* experts used, (token, expert) assignments */
    int *cnt = work_alloc((size_t)E * sizeof(int)), *tok = work_alloc(((size_t)n * K + n) * sizeof(int));
    const expert_weights **ex = work_alloc(((size_t)E + 1) * sizeof *ex);
    size_t *first = work_alloc(((size_t)E + 2) * sizeof *first), *h_at = work_alloc(((size_t)E + 2) * sizeof *h_at);
    float *gain = work_alloc(((size_t)n * K + n) * sizeof(float));
    memset(cnt, 0, (size_t)E * sizeof(int));
    for (int i = 0; i < n * K; i++) cnt[idx[i]]++;
    first[0] = h_at[0] = 0;
    for (int e = 0; e <= E; e++) { /* e == E: the shared expert */
        int m = e < E ? cnt[e] : shared ? n : 0;
        if (!m) continue;
        ex[ne] = e < E ? &w->experts[e] : &w->shared;
        for (int j = 0; j < n; j++)
            for (int k = 0; k < (e < E ? K : 1); k++)
                if (e == E || idx[(size_t)j * K + k] == e) tok[na] = j, gain[na] = e < E ? g[(size_t)j * K + k] : 1.0f, na++;
        first[ne + 1] = na;
        h_at[ne + 1] = h_at[ne] + (size_t)m * ex[ne]->w1.rows;
        ne++;
    }
    float *xe = work_alloc((size_t)na * D * sizeof(float)), *ye = work_alloc((size_t)na * D * sizeof(float));
    float *h1 = work_alloc(h_at[ne] * sizeof(float)), *h3 = work_alloc(h_at[ne] * sizeof(float));
    for (int a = 0; a < na; a++) memcpy(xe + (size_t)a * D, x + (size_t)tok[a] * D, D * sizeof(float));
    matmul_job *jobs = work_alloc((size_t)2 * ne * sizeof *jobs);
    for (int k = 0; k < ne; k++) {
        int m = (int)(first[k + 1] - first[k]);
        const float *xk = xe + first[k] * D;
        jobs[2 * k] = (matmul_job){h1 + h_at[k], &ex[k]->w1, xk, 1, 0, 0, m};
        jobs[2 * k + 1] = (matmul_job){h3 + h_at[k], &ex[k]->w3, xk, 1, 0, 0, m};
    }
    matmul_many(jobs, 2 * ne);
    float lim = c->swiglu_limit;
    for (int k = 0; k < ne; k++) {
        int inter = ex[k]->w1.rows;
        for (size_t a = first[k]; a < first[k + 1]; a++)
            for (int i = 0; i < inter; i++) {
                size_t q = h_at[k] + (a - first[k]) * inter + i;
                float up = fminf(fmaxf(h3[q], -lim), lim);
                h1[q] = up * siluf(fminf(h1[q], lim)) * gain[a];
            }
        jobs[k] = (matmul_job){ye + first[k] * D, &ex[k]->w2, h1 + h_at[k], 1, 0, 0, (int)(first[k + 1] - first[k])};
    }
    matmul_many(jobs, ne);
    memset(out, 0, (size_t)n * D * sizeof(float));
    for (int a = 0; a < na; a++)
        for (int d = 0; d < D; d++) out[(size_t)tok[a] * D + d] += ye[(size_t)a * D + d];
    work_free(jobs), work_free(h3), work_free(h1), work_free(ye), work_free(xe);
    work_free(gain), work_free(h_at), work_free(first), work_free(ex), work_free(tok), work_free(cnt);
}

void moe_forward(const v4c_model *m, const layer_weights *w, const float *x, const int32_t *ids, int n, float *out) {
    const v4c_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->n_experts_per_tok;
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

    experts_forward(c, w, x, idx, g, n, out);
    work_free(biased);
    work_free(g);
    work_free(idx);
    work_free(s);
}
