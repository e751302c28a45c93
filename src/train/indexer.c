#include "train/indexer.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "train/compressor.h"
#include "train/ops.h"
#include "util/util.h"

void indexer_acts_init(tr_run *r, const tr_model *m, const tr_layer *l, attn_acts *a) {
    const v4c_config *c = &m->cfg;
    size_t N = r->N, nI = c->index_n_heads, dI = c->index_head_dim, nb = r->T / 4;
    a->qI = tr_run_alloc(r, N * nI * dI * sizeof(real));
    a->wts = tr_run_alloc(r, N * nI * sizeof(real));
    a->sel = tr_run_alloc(r, N * (size_t)c->index_topk * sizeof(int));
    a->n_sel = tr_run_alloc(r, N * sizeof(int));
    a->mass = tr_run_alloc(r, N * nb * sizeof(real) + 1);
    comp_acts_init(r, &l->icomp, &a->icomp);
}

/* I(t, j) for the count entries visible at row i (sequence b). dots
 * (nI per entry) receives the per-head products when non-NULL. */
static void index_scores(const tr_model *m, const attn_acts *a, int i, int b, int T, int count, real *score, real *dots) {
    const v4c_config *c = &m->cfg;
    int nI = c->index_n_heads, dI = c->index_head_dim, nb = T / 4;
    for (int j = 0; j < count; j++) {
        const real *cj = a->icomp.ent + ((size_t)b * nb + j) * dI;
        real s = 0;
        for (int h = 0; h < nI; h++) {
            const real *qh = a->qI + ((size_t)i * nI + h) * dI;
            real dot = 0;
            for (int d = 0; d < dI; d++) dot += qh[d] * cj[d];
            if (dots) dots[(size_t)j * nI + h] = dot;
            s += a->wts[(size_t)i * nI + h] * (dot > 0 ? dot : 0);
        }
        score[j] = s;
    }
}

void indexer_forward(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, attn_acts *a) {
    const v4c_config *c = &m->cfg;
    int nI = c->index_n_heads, dI = c->index_head_dim, R = c->rope_dim, qr = c->q_lora_rank, D = c->hidden_size, N = B * T, topk = c->index_topk;
    linear_forward(a->qI, nI * dI, a->qlat, qr, P(m, l->iwq_b), qr, N, qr, nI * dI);
    linear_forward(a->wts, nI, x, D, P(m, l->iweights_proj), D, N, D, nI);
    real wscale = 1 / sqrt((real)dI) / sqrt((real)nI);
    for (int i = 0; i < N; i++) {
        for (int h = 0; h < nI; h++) {
            real *qh = a->qI + ((size_t)i * nI + h) * dI;
            rope_apply(qh + dI - R, R, l->rope_freqs, i % T, 0);
            hadamard_r(qh, dI);
            for (int d = 0; d < dI; d++) qh[d] /= sqrt((real)dI);
            if (o->quant) quant_fp4_r(qh, dI, 32);
        }
        for (int h = 0; h < nI; h++) a->wts[(size_t)i * nI + h] *= wscale;
    }
    comp_forward(m, &l->icomp, l->rope_freqs, B, T, x, &a->icomp, 1, o->quant);
    int nb = T / 4;
#pragma omp parallel
    {
        real *score = xmalloc((size_t)(nb + 1) * sizeof(real));
        float *scoref = xmalloc((size_t)(nb + 1) * sizeof(float));
#pragma omp for schedule(dynamic)
        for (int i = 0; i < N; i++) {
            int b = i / T, count = (i % T + 1) / 4;
            index_scores(m, a, i, b, T, count, score, NULL);
            for (int j = 0; j < count; j++) scoref[j] = (float)score[j];
            a->n_sel[i] = count < topk ? count : topk;
            topk_indices(scoref, count, a->n_sel[i], a->sel + (size_t)i * topk);
        }
        free(scoref);
        free(score);
    }
}

/* Candidates of row i: the selected entries (sparse) or all visible ones. */
static int candidates(const tr_model *m, const tr_opts *o, const attn_acts *a, int i, int T, int *cand) {
    int count = (i % T + 1) / 4, topk = m->cfg.index_topk;
    if (!o->sparse) {
        for (int j = 0; j < count; j++) cand[j] = j;
        return count;
    }
    memcpy(cand, a->sel + (size_t)i * topk, (size_t)a->n_sel[i] * sizeof(int));
    return a->n_sel[i];
}

/* p (target, renormalised mass) and q = softmax(I) over the candidates; returns KL(p || q). */
static real kl_row(const real *mass, const real *score, const int *cand, int n, real *p, real *q) {
    real total = 0, mx = -1e30, den = 0, kl = 0;
    for (int k = 0; k < n; k++) {
        total += mass[cand[k]];
        mx = score[cand[k]] > mx ? score[cand[k]] : mx;
    }
    for (int k = 0; k < n; k++) den += q[k] = exp(score[cand[k]] - mx);
    for (int k = 0; k < n; k++) {
        q[k] /= den;
        p[k] = total > 0 ? mass[cand[k]] / total : (real)1 / n;
        if (p[k] > 0) kl += p[k] * log(p[k] / (q[k] > 1e-30 ? q[k] : (real)1e-30));
    }
    return kl;
}

void indexer_kl_forward(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, attn_acts *a) {
    (void)l;
    int N = B * T, nb = T / 4;
    double kl = 0;
    int rows = 0;
#pragma omp parallel reduction(+ : kl, rows)
    {
        real *score = xmalloc((size_t)(nb + 1) * 4 * sizeof(real));
        real *p = score + nb + 1, *q = p + nb + 1;
        int *cand = xmalloc((size_t)(nb + 1) * sizeof(int));
#pragma omp for schedule(dynamic)
        for (int i = 0; i < N; i++) {
            int count = (i % T + 1) / 4;
            if (!count) continue;
            index_scores(m, a, i, i / T, T, count, score, NULL);
            int n = candidates(m, o, a, i, T, cand);
            kl += kl_row(a->mass + (size_t)i * nb, score, cand, n, p, q);
            rows++;
        }
        free(cand);
        free(score);
    }
    a->kl = kl;
    a->kl_rows = rows;
}

void indexer_kl_backward(tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const attn_acts *a) {
    const v4c_config *c = &m->cfg;
    int nI = c->index_n_heads, dI = c->index_head_dim, R = c->rope_dim, qr = c->q_lora_rank, D = c->hidden_size, N = B * T, nb = T / 4;
    if (!a->kl_rows) return;
    real coef = o->kl_weight / a->kl_rows;
    real *dqI = xcalloc((size_t)N * nI * dI, sizeof(real)), *dwts = xcalloc((size_t)N * nI, sizeof(real));
    real *dent = xcalloc((size_t)B * nb * dI + 1, sizeof(real));
#pragma omp parallel
    {
        real *score = xmalloc((size_t)(nb + 1) * 3 * sizeof(real)), *dots = xmalloc((size_t)(nb + 1) * nI * sizeof(real));
        real *p = score + nb + 1, *q = p + nb + 1;
        int *cand = xmalloc((size_t)(nb + 1) * sizeof(int));
#pragma omp for schedule(dynamic)
        for (int b = 0; b < B; b++) /* dent rows belong to one sequence */
            for (int t = 0; t < T; t++) {
                int i = b * T + t, count = (t + 1) / 4;
                if (!count) continue;
                index_scores(m, a, i, b, T, count, score, dots);
                int n = candidates(m, o, a, i, T, cand);
                kl_row(a->mass + (size_t)i * nb, score, cand, n, p, q);
                for (int k = 0; k < n; k++) {
                    int j = cand[k];
                    real dI_j = coef * (q[k] - p[k]);
                    const real *cj = a->icomp.ent + ((size_t)b * nb + j) * dI;
                    real *dcj = dent + ((size_t)b * nb + j) * dI;
                    for (int h = 0; h < nI; h++) {
                        real dot = dots[(size_t)j * nI + h];
                        if (dot <= 0) continue;
                        dwts[(size_t)i * nI + h] += dI_j * dot;
                        real g = dI_j * a->wts[(size_t)i * nI + h];
                        const real *qh = a->qI + ((size_t)i * nI + h) * dI;
                        real *dqh = dqI + ((size_t)i * nI + h) * dI;
                        for (int d = 0; d < dI; d++) {
                            dqh[d] += g * cj[d];
                            dcj[d] += g * qh[d];
                        }
                    }
                }
            }
        free(cand);
        free(dots);
        free(score);
    }
    real wscale = 1 / sqrt((real)dI) / sqrt((real)nI);
    for (int i = 0; i < N; i++) {
        for (int h = 0; h < nI; h++) {
            real *dqh = dqI + ((size_t)i * nI + h) * dI;
            for (int d = 0; d < dI; d++) dqh[d] /= sqrt((real)dI);
            hadamard_r(dqh, dI);
            rope_apply(dqh + dI - R, R, l->rope_freqs, i % T, 1);
        }
        for (int h = 0; h < nI; h++) dwts[(size_t)i * nI + h] *= wscale;
    }
    /* inputs detached: parameter gradients only */
    linear_backward(NULL, qr, G(m, l->iwq_b), dqI, nI * dI, a->qlat, qr, P(m, l->iwq_b), qr, N, qr, nI * dI);
    linear_backward(NULL, D, G(m, l->iweights_proj), dwts, nI, x, D, P(m, l->iweights_proj), D, N, D, nI);
    comp_backward(m, &l->icomp, l->rope_freqs, B, T, x, &a->icomp, dent, 1, NULL);
    free(dent);
    free(dwts);
    free(dqI);
}
