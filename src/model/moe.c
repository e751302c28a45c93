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

/* Assignments per group of experts run together: a decode step or a
 * server's batch is one group; prefill's experts (~48 tokens each) go a
 * few at a time, so the activations stay small and reused (all of a
 * 512-token chunk's at once took 150 MB of fresh pages per layer). */
enum { GROUP_ASSIGNMENTS = 64 };

typedef struct {
    float *xe, *ye, *h1, *h3; /* the group's inputs, outputs, and w1 / w3 products */
    matmul_job *jobs;
} group_buffers;

/* The experts [k0, k1) of a layer's list (ex; their assignments
 * [first[k], first[k+1]) of tokens tok with gains gain), each phase for
 * all of them at once (matmul_many: those with a few tokens share one
 * parallel region): w1 and w3, SwiGLU with the clamp and the routing
 * weight, w2, then out[t] += each expert's output in order. */

static void experts_group(const v4c_config *c, const expert_weights *const *ex, const size_t *first, const int *tok, const float *gain, int k0,
                          int k1, const float *x, const group_buffers *b, float *out) {
    int D = c->hidden_size, ng = k1 - k0;
    size_t a0 = first[k0], na = first[k1] - a0;
    float *xe = b->xe, *ye = b->ye, *h1 = b->h1, *h3 = b->h3;
    matmul_job *jobs = b->jobs;
    for (size_t a = 0; a < na; a++) memcpy(xe + a * D, x + (size_t)tok[a0 + a] * D, D * sizeof(float));
    for (int k = k0, at = 0; k < k1; k++) {
        int m = (int)(first[k + 1] - first[k]);
        float *xk = xe + (first[k] - a0) * D;
        if (matrix_quantizes_input(&ex[k]->w1)) /* w1 and w3 share one quantized input */
            for (int r = 0; r < m; r++) fp8_quant(xk + (size_t)r * D, D, 128);
        jobs[2 * (k - k0)] = (matmul_job){h1 + at, 0, &ex[k]->w1, 0, 0, xk, 0, m, 0};
        jobs[2 * (k - k0) + 1] = (matmul_job){h3 + at, 0, &ex[k]->w3, 0, 0, xk, 0, m, 0};
        at += m * ex[k]->w1.rows;
    }
    matmul_many(jobs, 2 * ng);
    float lim = c->swiglu_limit;
    for (int k = k0, at = 0; k < k1; k++) {
        int inter = ex[k]->w1.rows, m = (int)(first[k + 1] - first[k]);
        for (int r = 0; r < m; r++) {
            size_t q = (size_t)at + (size_t)r * inter;
            swiglu_row(h1 + q, h3 + q, gain[first[k] + r], lim, inter);
        }
        jobs[k - k0] = (matmul_job){ye + (first[k] - a0) * D, 0, &ex[k]->w2, 0, 0, h1 + at, 0, m, 1};
        at += m * inter;
    }
    matmul_many(jobs, ng);
    for (size_t a = 0; a < na; a++)
        for (int d = 0; d < D; d++) out[(size_t)tok[a0 + a] * D + d] += ye[a * D + d];
}

/* The routed experts (in increasing order, each with its tokens) and the
 * shared one (all tokens), in groups of about GROUP_ASSIGNMENTS: out[t] =
 * the sum of the experts' outputs in that order. Every output is its own
 * chain whatever the grouping, so one token and a batch agree. */
static void experts_forward(const v4c_config *c, const layer_weights *w, const float *x, const int *idx, const float *g, int n, float *out) {
    int K = c->n_experts_per_tok, E = c->n_routed_experts, shared = c->n_shared_experts > 0;
    int ne = 0, na = 0; /* experts used, (token, expert) assignments */
    int *cnt = work_alloc((size_t)E * sizeof(int)), *tok = work_alloc(((size_t)n * K + n) * sizeof(int));
    const expert_weights **ex = work_alloc(((size_t)E + 1) * sizeof *ex);
    size_t *first = work_alloc(((size_t)E + 2) * sizeof *first);
    float *gain = work_alloc(((size_t)n * K + n) * sizeof(float));
    memset(cnt, 0, (size_t)E * sizeof(int));
    for (int i = 0; i < n * K; i++) cnt[idx[i]]++;
    /* A counting sort: cnt becomes each used expert's next slot, and one
     * pass over the assignments (tokens in order) fills them. */
    first[0] = 0;
    for (int e = 0; e < E; e++)
        if (cnt[e]) ex[ne] = &w->experts[e], na += cnt[e], cnt[e] = (int)first[ne], first[++ne] = na;
    for (int i = 0; i < n * K; i++) tok[cnt[idx[i]]] = i / K, gain[cnt[idx[i]]++] = g[i];
    if (shared) { /* the shared expert last, all tokens */
        ex[ne] = &w->shared;
        for (int j = 0; j < n; j++) tok[na] = j, gain[na] = 1.0f, na++;
        first[++ne] = na;
    }
    /* The groups, and buffers for the largest, allocated once. */
    int *group_end = work_alloc(((size_t)ne + 1) * sizeof(int)), groups = 0;
    size_t most = 0, most_h = 0, inter = 0;
    for (int k = 0; k < ne; k++) inter = (size_t)ex[k]->w1.rows > inter ? (size_t)ex[k]->w1.rows : inter;
    for (int k0 = 0, k1; k0 < ne; k0 = k1) {
        for (k1 = k0 + 1; k1 < ne && first[k1 + 1] - first[k0] <= GROUP_ASSIGNMENTS; k1++) {
        }
        group_end[groups++] = k1;
        most = first[k1] - first[k0] > most ? first[k1] - first[k0] : most;
    }
    most_h = most * inter;
    int D = c->hidden_size;
    group_buffers b = {work_alloc(most * D * sizeof(float)), work_alloc(most * D * sizeof(float)), work_alloc(most_h * sizeof(float)),
                       work_alloc(most_h * sizeof(float)), work_alloc((size_t)2 * ne * sizeof(matmul_job))};
    memset(out, 0, (size_t)n * D * sizeof(float));
    for (int gi = 0, k0 = 0; gi < groups; k0 = group_end[gi++]) experts_group(c, ex, first, tok, gain, k0, group_end[gi], x, &b, out);
    work_free(b.jobs), work_free(b.h3), work_free(b.h1), work_free(b.ye), work_free(b.xe), work_free(group_end);
    work_free(gain), work_free(first), work_free(ex), work_free(tok), work_free(cnt);
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
