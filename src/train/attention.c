/* Hybrid attention (MODEL.md §4) over whole sequences: forward and
 * backward of the projections, the sliding window + compressed keys with a
 * sink, and the grouped output projection. The lightning indexer lives in
 * indexer.c. */
#include <stdlib.h>
#include <string.h>

#include "train/compressor.h"
#include "train/indexer.h"
#include "train/ops.h"
#include "util/util.h"

void attn_acts_init(tr_run *r, const tr_model *m, const tr_layer *l, attn_acts *a) {
    const v4c_config *c = &m->cfg;
    size_t N = r->N, H = c->n_heads, Dh = c->head_dim, qr = c->q_lora_rank;
#define A(n) tr_run_alloc(r, (n) * sizeof(real))
    a->qlat_raw = A(N * qr);
    a->qlat_rstd = A(N);
    a->qlat = A(N * qr);
    a->q_raw = A(N * H * Dh);
    a->q_rstd = A(N * H);
    a->q = A(N * H * Dh);
    a->kv_raw = A(N * Dh);
    a->kv_rstd = A(N);
    a->kv = A(N * Dh);
    a->o = A(N * H * Dh);
    a->u = A(N * c->o_groups * c->o_lora_rank);
    if (l->ratio > 0) comp_acts_init(r, &l->comp, &a->comp);
    if (l->ratio == 4) indexer_acts_init(r, m, l, a);
#undef A
}

/* The keys query t of sequence b sees: window rows of kv, then compressed
 * entries. entry[k] is the compressed entry index (-1 for a window key),
 * row[k] the row of kv or of the entries. Returns the count. */
static int visible_keys(const tr_layer *l, const tr_opts *o, const attn_acts *a, int topk, int win, int b, int T, int t, int *row, int *entry) {
    int n = 0, nb = l->ratio > 0 ? T / l->ratio : 0;
    for (int p = t - win + 1 < 0 ? 0 : t - win + 1; p <= t; p++) {
        row[n] = b * T + p;
        entry[n++] = -1;
    }
    if (l->ratio == 0) return n;
    int count = (t + 1) / l->ratio;
    if (l->ratio == 4 && o->sparse) {
        const int *sel = a->sel + ((size_t)b * T + t) * topk;
        for (int k = 0; k < a->n_sel[b * T + t]; k++) {
            row[n] = b * nb + sel[k];
            entry[n++] = sel[k];
        }
    } else {
        for (int j = 0; j < count; j++) {
            row[n] = b * nb + j;
            entry[n++] = j;
        }
    }
    return n;
}

/* softmax with sink over scores[0..n): probabilities in place; returns p_sink. */
static real softmax_sink(real *scores, int n, real sink) {
    real mx = sink;
    for (int k = 0; k < n; k++) mx = scores[k] > mx ? scores[k] : mx;
    real den = exp(sink - mx);
    for (int k = 0; k < n; k++) den += scores[k] = exp(scores[k] - mx);
    for (int k = 0; k < n; k++) scores[k] /= den;
    return exp(sink - mx) / den;
}

static int max_keys(const tr_model *m, const tr_layer *l, int T) { return m->cfg.window + (l->ratio > 0 ? T / l->ratio : 0) + 1; }

void attn_forward(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, attn_acts *a, real *out) {
    const v4c_config *c = &m->cfg;
    int H = c->n_heads, Dh = c->head_dim, R = c->rope_dim, qr = c->q_lora_rank, D = c->hidden_size, N = B * T;
    real eps = c->norm_eps;
    linear_forward(a->qlat_raw, qr, x, D, P(m, l->wq_a), D, N, D, qr);
    rmsnorm_forward(a->qlat, a->qlat_rstd, a->qlat_raw, P(m, l->q_norm), N, qr, eps);
    linear_forward(a->q_raw, H * Dh, a->qlat, qr, P(m, l->wq_b), qr, N, qr, H * Dh);
    rmsnorm_forward(a->q, a->q_rstd, a->q_raw, NULL, N * H, Dh, eps);
    linear_forward(a->kv_raw, Dh, x, D, P(m, l->wkv), D, N, D, Dh);
    rmsnorm_forward(a->kv, a->kv_rstd, a->kv_raw, P(m, l->kv_norm), N, Dh, eps);
    for (int i = 0; i < N; i++) {
        for (int h = 0; h < H; h++) rope_apply(a->q + ((size_t)i * H + h) * Dh + Dh - R, R, l->rope_freqs, i % T, 0);
        rope_apply(a->kv + (size_t)i * Dh + Dh - R, R, l->rope_freqs, i % T, 0);
        if (o->quant) quant_fp8_r(a->kv + (size_t)i * Dh, Dh - R, 64);
    }
    if (l->ratio > 0) comp_forward(m, &l->comp, l->rope_freqs, B, T, x, &a->comp, 0, o->quant);
    if (l->ratio == 4) indexer_forward(m, l, o, B, T, x, a);

    int nb = l->ratio > 0 ? T / l->ratio : 0, mk = max_keys(m, l, T), track_mass = l->ratio == 4 && o->kl_weight > 0;
    const real *sink = P(m, l->attn_sink);
    if (track_mass) memset(a->mass, 0, (size_t)N * nb * sizeof(real));
#pragma omp parallel
    {
        int *row = xmalloc((size_t)mk * sizeof(int)), *entry = xmalloc((size_t)mk * sizeof(int));
        real *p = xmalloc((size_t)mk * sizeof(real));
#pragma omp for schedule(dynamic)
        for (int i = 0; i < N; i++) {
            int b = i / T, t = i % T, n = visible_keys(l, o, a, c->index_topk, c->window, b, T, t, row, entry);
            for (int h = 0; h < H; h++) {
                const real *q = a->q + ((size_t)i * H + h) * Dh;
                for (int k = 0; k < n; k++) {
                    const real *key = entry[k] < 0 ? a->kv + (size_t)row[k] * Dh : a->comp.ent + (size_t)row[k] * Dh;
                    real s = 0;
                    for (int d = 0; d < Dh; d++) s += q[d] * key[d];
                    p[k] = s / sqrt((real)Dh);
                }
                softmax_sink(p, n, sink[h]);
                real *oh = a->o + ((size_t)i * H + h) * Dh;
                memset(oh, 0, (size_t)Dh * sizeof(real));
                for (int k = 0; k < n; k++) {
                    const real *key = entry[k] < 0 ? a->kv + (size_t)row[k] * Dh : a->comp.ent + (size_t)row[k] * Dh;
                    for (int d = 0; d < Dh; d++) oh[d] += p[k] * key[d];
                    if (track_mass && entry[k] >= 0) a->mass[(size_t)i * nb + entry[k]] += p[k];
                }
                rope_apply(oh + Dh - R, R, l->rope_freqs, t, 1);
            }
        }
        free(p);
        free(entry);
        free(row);
    }
    if (track_mass) indexer_kl_forward(m, l, o, B, T, a);

    int Gr = c->o_groups, olr = c->o_lora_rank, gw = H * Dh / Gr;
    for (int g = 0; g < Gr; g++)
        linear_forward(a->u + (size_t)g * olr, Gr * olr, a->o + (size_t)g * gw, H * Dh, P(m, l->wo_a) + (size_t)g * olr * gw, gw, N, gw, olr);
    linear_forward(out, D, a->u, Gr * olr, P(m, l->wo_b), Gr * olr, N, Gr * olr, D);
}

void attn_backward(tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const attn_acts *a, const real *dout, real *dx) {
    const v4c_config *c = &m->cfg;
    int H = c->n_heads, Dh = c->head_dim, R = c->rope_dim, qr = c->q_lora_rank, D = c->hidden_size, N = B * T;
    int Gr = c->o_groups, olr = c->o_lora_rank, gw = H * Dh / Gr, nb = l->ratio > 0 ? T / l->ratio : 0, mk = max_keys(m, l, T);
    real *du = xcalloc((size_t)N * Gr * olr, sizeof(real)), *dO = xcalloc((size_t)N * H * Dh, sizeof(real));
    linear_backward(du, Gr * olr, G(m, l->wo_b), dout, D, a->u, Gr * olr, P(m, l->wo_b), Gr * olr, N, Gr * olr, D);
    for (int g = 0; g < Gr; g++)
        linear_backward(dO + (size_t)g * gw, H * Dh, G(m, l->wo_a) + (size_t)g * olr * gw, du + (size_t)g * olr, Gr * olr, a->o + (size_t)g * gw,
                        H * Dh, P(m, l->wo_a) + (size_t)g * olr * gw, gw, N, gw, olr);

    real *dq = xcalloc((size_t)N * H * Dh, sizeof(real)), *dkv = xcalloc((size_t)N * Dh, sizeof(real));
    real *dent = xcalloc((size_t)B * nb * Dh + 1, sizeof(real)), *dsink_b = xcalloc((size_t)B * H, sizeof(real));
    const real *sink = P(m, l->attn_sink);
#pragma omp parallel
    {
        int *row = xmalloc((size_t)mk * sizeof(int)), *entry = xmalloc((size_t)mk * sizeof(int));
        real *p = xmalloc((size_t)mk * sizeof(real)), *dp = xmalloc((size_t)mk * sizeof(real)), *doh = xmalloc((size_t)Dh * sizeof(real));
#pragma omp for schedule(dynamic)
        for (int b = 0; b < B; b++) /* a sequence's keys are its own: one thread per sequence */
            for (int t = 0; t < T; t++) {
                int i = b * T + t, n = visible_keys(l, o, a, c->index_topk, c->window, b, T, t, row, entry);
                for (int h = 0; h < H; h++) {
                    const real *q = a->q + ((size_t)i * H + h) * Dh;
                    memcpy(doh, dO + ((size_t)i * H + h) * Dh, (size_t)Dh * sizeof(real));
                    rope_apply(doh + Dh - R, R, l->rope_freqs, t, 0);
                    real scale = 1 / sqrt((real)Dh), pd = 0;
                    for (int k = 0; k < n; k++) {
                        const real *key = entry[k] < 0 ? a->kv + (size_t)row[k] * Dh : a->comp.ent + (size_t)row[k] * Dh;
                        real s = 0, sd = 0;
                        for (int d = 0; d < Dh; d++) {
                            s += q[d] * key[d];
                            sd += doh[d] * key[d];
                        }
                        p[k] = s * scale;
                        dp[k] = sd;
                    }
                    real psink = softmax_sink(p, n, sink[h]);
                    for (int k = 0; k < n; k++) pd += p[k] * dp[k];
                    dsink_b[b * H + h] -= psink * pd;
                    real *dqh = dq + ((size_t)i * H + h) * Dh;
                    for (int k = 0; k < n; k++) {
                        const real *key = entry[k] < 0 ? a->kv + (size_t)row[k] * Dh : a->comp.ent + (size_t)row[k] * Dh;
                        real *dkey = entry[k] < 0 ? dkv + (size_t)row[k] * Dh : dent + (size_t)row[k] * Dh;
                        real ds = p[k] * (dp[k] - pd) * scale;
                        for (int d = 0; d < Dh; d++) {
                            dqh[d] += ds * key[d];
                            dkey[d] += ds * q[d] + p[k] * doh[d];
                        }
                    }
                }
            }
        free(doh);
        free(dp);
        free(p);
        free(entry);
        free(row);
    }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) G(m, l->attn_sink)[h] += dsink_b[b * H + h];

    /* queries: undo RoPE, per-head norm, wq_b, q_norm, wq_a */
    for (int i = 0; i < N; i++)
        for (int h = 0; h < H; h++) rope_apply(dq + ((size_t)i * H + h) * Dh + Dh - R, R, l->rope_freqs, i % T, 1);
    real *dq_raw = xcalloc((size_t)N * H * Dh, sizeof(real)), *dqlat = xcalloc((size_t)N * qr, sizeof(real));
    real *dqlat_raw = xcalloc((size_t)N * qr, sizeof(real));
    rmsnorm_backward(dq_raw, NULL, dq, a->q_raw, NULL, a->q_rstd, N * H, Dh);
    linear_backward(dqlat, qr, G(m, l->wq_b), dq_raw, H * Dh, a->qlat, qr, P(m, l->wq_b), qr, N, qr, H * Dh);
    rmsnorm_backward(dqlat_raw, G(m, l->q_norm), dqlat, a->qlat_raw, P(m, l->q_norm), a->qlat_rstd, N, qr);
    linear_backward(dx, D, G(m, l->wq_a), dqlat_raw, qr, x, D, P(m, l->wq_a), D, N, D, qr);

    /* keys/values: FP8 straight through, undo RoPE, kv_norm, wkv */
    for (int i = 0; i < N; i++) rope_apply(dkv + (size_t)i * Dh + Dh - R, R, l->rope_freqs, i % T, 1);
    real *dkv_raw = xcalloc((size_t)N * Dh, sizeof(real));
    rmsnorm_backward(dkv_raw, G(m, l->kv_norm), dkv, a->kv_raw, P(m, l->kv_norm), a->kv_rstd, N, Dh);
    linear_backward(dx, D, G(m, l->wkv), dkv_raw, Dh, x, D, P(m, l->wkv), D, N, D, Dh);
    if (l->ratio > 0) comp_backward(m, &l->comp, l->rope_freqs, B, T, x, &a->comp, dent, 0, dx);
    if (l->ratio == 4 && o->kl_weight > 0) indexer_kl_backward(m, l, o, B, T, x, a);

    free(dkv_raw);
    free(dqlat_raw);
    free(dqlat);
    free(dq_raw);
    free(dsink_b);
    free(dent);
    free(dkv);
    free(dq);
    free(dO);
    free(du);
}
