/* DeepSeekMoE (MODEL.md §5) forward/backward: sqrt-softplus router,
 * bias-adjusted or hash top-k, SwiGLU with the clamp (no gradient through a
 * clamped side), routing weight before w2, shared expert; plus the
 * sequence-wise balance loss of TRAINING.md. */
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "train/model.h"
#include "train/ops.h"
#include "util/util.h"

void moe_acts_init(tr_run *r, const tr_model *m, moe_acts *a) {
    const v4c_config *c = &m->cfg;
    size_t N = r->N, E = c->n_routed_experts, K = c->n_experts_per_tok, F = c->moe_inter, Is = (size_t)c->n_shared_experts * F;
    a->s_raw = tr_run_alloc(r, N * E * sizeof(real));
    a->s = tr_run_alloc(r, N * E * sizeof(real));
    a->idx = tr_run_alloc(r, N * K * sizeof(int));
    a->g = tr_run_alloc(r, N * K * sizeof(real));
    a->by_expert = tr_run_alloc(r, N * K * sizeof(int));
    a->expert_start = tr_run_alloc(r, (E + 1) * sizeof(int));
    a->h1 = tr_run_alloc(r, N * K * F * sizeof(real));
    a->h3 = tr_run_alloc(r, N * K * F * sizeof(real));
    a->sh1 = tr_run_alloc(r, N * Is * sizeof(real) + 1);
    a->sh3 = tr_run_alloc(r, N * Is * sizeof(real) + 1);
    a->load = tr_run_alloc(r, E * sizeof(int));
}

static real silu_r(real z) { return z / (1 + exp(-z)); }

/* act[n, F] = clamp(h3) * silu(min(h1, limit)) * g */
static void swiglu(const real *h1, const real *h3, const real *g, int n, int F, real lim, real *act) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < F; i++) {
            size_t k = (size_t)r * F + i;
            real up = h3[k] > lim ? lim : h3[k] < -lim ? -lim : h3[k];
            act[k] = up * silu_r(h1[k] < lim ? h1[k] : lim) * (g ? g[r] : 1);
        }
}

/* y[n, D] = Expert(x) with h1/h3 kept. */
static void expert_forward(const tr_model *m, size_t w1, size_t w2, size_t w3, int F, const real *x, const real *g, int n, real *h1, real *h3,
                           real *y) {
    int D = m->cfg.hidden_size;
    real *act = xmalloc((size_t)n * F * sizeof(real));
    linear_forward(h1, F, x, D, P(m, w1), D, n, D, F);
    linear_forward(h3, F, x, D, P(m, w3), D, n, D, F);
    swiglu(h1, h3, g, n, F, m->cfg.swiglu_limit, act);
    linear_forward(y, D, act, F, P(m, w2), F, n, F, D);
    free(act);
}

/* dy -> dx (=), dg (=, when g), weight gradients. */
static void expert_backward(tr_model *m, size_t w1, size_t w2, size_t w3, int F, const real *x, const real *g, int n, const real *h1,
                            const real *h3, const real *dy, real *dx, real *dg) {
    int D = m->cfg.hidden_size;
    real lim = m->cfg.swiglu_limit;
    real *act = xmalloc((size_t)n * F * sizeof(real)), *dact = xcalloc((size_t)n * F, sizeof(real));
    real *dh1 = xmalloc((size_t)n * F * sizeof(real)), *dh3 = xmalloc((size_t)n * F * sizeof(real));
    swiglu(h1, h3, g, n, F, lim, act);
    linear_backward(dact, F, G(m, w2), dy, D, act, F, P(m, w2), F, n, F, D);
    for (int r = 0; r < n; r++) {
        real gr = g ? g[r] : 1, dgr = 0;
        for (int i = 0; i < F; i++) {
            size_t k = (size_t)r * F + i;
            real a1 = h1[k] < lim ? h1[k] : lim, sg = silu_r(a1), sig = sigmoid_r(a1);
            real up = h3[k] > lim ? lim : h3[k] < -lim ? -lim : h3[k];
            dgr += dact[k] * up * sg;
            dh3[k] = (h3[k] > -lim && h3[k] < lim) ? dact[k] * sg * gr : 0;
            dh1[k] = h1[k] < lim ? dact[k] * up * gr * sig * (1 + a1 * (1 - sig)) : 0;
        }
        if (dg) dg[r] = dgr;
    }
    memset(dx, 0, (size_t)n * D * sizeof(real));
    linear_backward(dx, D, G(m, w1), dh1, F, x, D, P(m, w1), D, n, D, F);
    linear_backward(dx, D, G(m, w3), dh3, F, x, D, P(m, w3), D, n, D, F);
    free(dh3);
    free(dh1);
    free(dact);
    free(act);
}

/* The rows of src (one per token, D wide) of expert e's assignments, in its
 * order, into out; their gates into gates unless NULL. */
static void gather_expert(const moe_acts *a, int e, int K, int D, const real *src, real *out, real *gates) {
    for (int r = 0; r < a->load[e]; r++) {
        int q = a->by_expert[a->expert_start[e] + r];
        memcpy(out + (size_t)r * D, src + (size_t)(q / K) * D, (size_t)D * sizeof(real));
        if (gates) gates[r] = a->g[q];
    }
}

void moe_forward_train(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const int *ids, moe_acts *a,
                       real *out) {
    const v4c_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->n_experts_per_tok, D = c->hidden_size, F = c->moe_inter, N = B * T;
    linear_forward(a->s_raw, E, x, D, P(m, l->gate), D, N, D, E);
    const real *bias = l->is_hash ? NULL : P(m, l->gate_bias);
#pragma omp parallel
    {
        float *biased = xmalloc((size_t)E * sizeof(float));
#pragma omp for
        for (int i = 0; i < N; i++) {
            real *si = a->s + (size_t)i * E;
            int *ii = a->idx + (size_t)i * K;
            for (int e = 0; e < E; e++) {
                real z = a->s_raw[(size_t)i * E + e];
                si[e] = sqrt(z > 20 ? z : log1p(exp(z)));
            }
            if (l->is_hash) {
                for (int k = 0; k < K; k++) ii[k] = l->tid2eid[(size_t)ids[i] * K + k];
            } else {
                for (int e = 0; e < E; e++) biased[e] = (float)(si[e] + bias[e]);
                topk_indices(biased, E, K, ii);
            }
            real sum = 0;
            for (int k = 0; k < K; k++) sum += si[ii[k]];
            for (int k = 0; k < K; k++) a->g[(size_t)i * K + k] = si[ii[k]] / sum * c->route_scale;
        }
        free(biased);
    }
    /* group the assignments by expert */
    memset(a->load, 0, (size_t)E * sizeof(int));
    for (int q = 0; q < N * K; q++) a->load[a->idx[q]]++;
    a->expert_start[0] = 0;
    for (int e = 0; e < E; e++) a->expert_start[e + 1] = a->expert_start[e] + a->load[e];
    int *fill = xcalloc((size_t)E, sizeof(int));
    for (int q = 0; q < N * K; q++) a->by_expert[a->expert_start[a->idx[q]] + fill[a->idx[q]]++] = q;
    free(fill);

    memset(out, 0, (size_t)N * D * sizeof(real));
    real *xe = xmalloc((size_t)N * K * D * sizeof(real) + 1), *ye = xmalloc((size_t)N * K * D * sizeof(real) + 1);
    real *ge = xmalloc((size_t)N * K * sizeof(real) + 1);
    for (int e = 0; e < E; e++) {
        int s0 = a->expert_start[e], cnt = a->load[e];
        if (!cnt) continue;
        gather_expert(a, e, K, D, x, xe, ge);
        expert_forward(m, l->w1[e], l->w2[e], l->w3[e], F, xe, ge, cnt, a->h1 + (size_t)s0 * F, a->h3 + (size_t)s0 * F, ye);
        for (int r = 0; r < cnt; r++) {
            real *dst = out + (size_t)(a->by_expert[s0 + r] / K) * D;
            for (int d = 0; d < D; d++) dst[d] += ye[(size_t)r * D + d];
        }
    }
    if (c->n_shared_experts > 0) {
        expert_forward(m, l->sw1, l->sw2, l->sw3, c->n_shared_experts * F, x, NULL, N, a->sh1, a->sh3, ye);
        for (size_t k = 0; k < (size_t)N * D; k++) out[k] += ye[k];
    }
    free(ge);
    free(ye);
    free(xe);

    /* sequence-wise balance loss: alpha * sum_e f_e P_e per sequence */
    a->balance = 0;
    if (l->is_hash || o->balance_alpha <= 0) return;
    real *f = xmalloc((size_t)E * sizeof(real)), *Pe = xmalloc((size_t)E * sizeof(real));
    for (int b = 0; b < B; b++) {
        memset(f, 0, (size_t)E * sizeof(real));
        memset(Pe, 0, (size_t)E * sizeof(real));
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            real S = 0;
            for (int e = 0; e < E; e++) S += a->s[(size_t)i * E + e];
            for (int e = 0; e < E; e++) Pe[e] += a->s[(size_t)i * E + e] / S / T;
            for (int k = 0; k < K; k++) f[a->idx[(size_t)i * K + k]] += (real)E / ((real)K * T);
        }
        for (int e = 0; e < E; e++) a->balance += o->balance_alpha * f[e] * Pe[e] / B; /* mean over sequences */
    }
    free(Pe);
    free(f);
}

void moe_backward_train(tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const moe_acts *a, const real *dout,
                        real *dx) {
    const v4c_config *c = &m->cfg;
    int E = c->n_routed_experts, K = c->n_experts_per_tok, D = c->hidden_size, F = c->moe_inter, N = B * T;
    real *dg = xcalloc((size_t)N * K, sizeof(real)), *ds = xcalloc((size_t)N * E, sizeof(real));
    real *xe = xmalloc((size_t)N * K * D * sizeof(real) + 1), *dye = xmalloc((size_t)N * K * D * sizeof(real) + 1);
    real *dxe = xmalloc((size_t)N * K * D * sizeof(real) + 1), *ge = xmalloc((size_t)N * K * sizeof(real) + 1);
    real *dge = xmalloc((size_t)N * K * sizeof(real) + 1);
    for (int e = 0; e < E; e++) {
        int s0 = a->expert_start[e], cnt = a->load[e];
        if (!cnt) continue;
        gather_expert(a, e, K, D, x, xe, ge);
        gather_expert(a, e, K, D, dout, dye, NULL);
        expert_backward(m, l->w1[e], l->w2[e], l->w3[e], F, xe, ge, cnt, a->h1 + (size_t)s0 * F, a->h3 + (size_t)s0 * F, dye, dxe, dge);
        for (int r = 0; r < cnt; r++) {
            int q = a->by_expert[s0 + r];
            dg[q] = dge[r];
            real *dst = dx + (size_t)(q / K) * D;
            for (int d = 0; d < D; d++) dst[d] += dxe[(size_t)r * D + d];
        }
    }
    if (c->n_shared_experts > 0) {
        real *dxs = xmalloc((size_t)N * D * sizeof(real));
        expert_backward(m, l->sw1, l->sw2, l->sw3, c->n_shared_experts * F, x, NULL, N, a->sh1, a->sh3, dout, dxs, NULL);
        for (size_t k = 0; k < (size_t)N * D; k++) dx[k] += dxs[k];
        free(dxs);
    }
    /* g_k = s_k / S * route_scale over the chosen k */
    for (int i = 0; i < N; i++) {
        const real *si = a->s + (size_t)i * E;
        const int *ii = a->idx + (size_t)i * K;
        real S = 0, dot = 0;
        for (int k = 0; k < K; k++) S += si[ii[k]];
        for (int k = 0; k < K; k++) dot += dg[(size_t)i * K + k] * si[ii[k]] / S;
        for (int k = 0; k < K; k++) ds[(size_t)i * E + ii[k]] += c->route_scale / S * (dg[(size_t)i * K + k] - dot);
    }
    if (!l->is_hash && o->balance_alpha > 0) {
        real *f = xmalloc((size_t)E * sizeof(real)), alpha = o->balance_alpha / B;
        for (int b = 0; b < B; b++) {
            memset(f, 0, (size_t)E * sizeof(real));
            for (int t = 0; t < T; t++)
                for (int k = 0; k < K; k++) f[a->idx[((size_t)b * T + t) * K + k]] += (real)E / ((real)K * T);
            for (int t = 0; t < T; t++) { /* P_e = mean_t s_e / sum s: d s'_e = alpha f_e / T */
                int i = b * T + t;
                const real *si = a->s + (size_t)i * E;
                real S = 0, dot = 0;
                for (int e = 0; e < E; e++) S += si[e];
                for (int e = 0; e < E; e++) dot += alpha * f[e] / T * si[e] / S;
                for (int e = 0; e < E; e++) ds[(size_t)i * E + e] += (alpha * f[e] / T - dot) / S;
            }
        }
        free(f);
    }
    for (size_t k = 0; k < (size_t)N * E; k++) { /* s = sqrt(softplus(z)): ds/dz = sigmoid(z) / (2 s) */
        ds[k] *= sigmoid_r(a->s_raw[k]) / (2 * a->s[k]);
    }
    linear_backward(dx, D, G(m, l->gate), ds, E, x, D, P(m, l->gate), D, N, D, E);
    free(dge);
    free(ge);
    free(dxe);
    free(dye);
    free(xe);
    free(ds);
    free(dg);
}
