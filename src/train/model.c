/* The whole model, forward then backward (MODEL.md §3-§6): embedding into
 * hc streams, blocks, HC head + norm + head, the MTP block, the losses. */
#include "train/model.h"

#include <stdlib.h>
#include <string.h>

#include "train/ops.h"
#include "util/util.h"

void *tr_run_alloc(tr_run *r, size_t bytes) {
    r->owned = xrealloc(r->owned, (size_t)(r->n_owned + 1) * sizeof(void *));
    return r->owned[r->n_owned++] = xcalloc(bytes ? bytes : 1, 1);
}

static void hc_acts_init(tr_run *r, const v4c_config *c, hc_acts *a, int rows) {
    size_t N = r->N, hc = c->hc_mult;
    a->mix = tr_run_alloc(r, N * rows * sizeof(real));
    a->r = tr_run_alloc(r, N * sizeof(real));
    a->pre = tr_run_alloc(r, N * hc * sizeof(real));
    a->post = tr_run_alloc(r, N * hc * sizeof(real));
    a->comb = tr_run_alloc(r, N * hc * hc * sizeof(real));
}

static void head_acts_init(tr_run *r, const v4c_config *c, head_acts *h) {
    size_t N = r->N, D = c->hidden_size;
    hc_acts_init(r, c, &h->hc, c->hc_mult);
    h->y = tr_run_alloc(r, N * D * sizeof(real));
    h->rstd = tr_run_alloc(r, N * sizeof(real));
    h->yn = tr_run_alloc(r, N * D * sizeof(real));
    h->logits = tr_run_alloc(r, N * (size_t)c->vocab_size * sizeof(real));
}

void tr_run_init(tr_run *r, const tr_model *m, int B, int T) {
    const v4c_config *c = &m->cfg;
    memset(r, 0, sizeof *r);
    r->B = B;
    r->T = T;
    r->N = B * T;
    r->has_mtp = c->n_mtp > 0;
    size_t N = r->N, D = c->hidden_size, hcD = (size_t)c->hc_mult * D, mix = (size_t)(2 + c->hc_mult) * c->hc_mult;
    r->ids = tr_run_alloc(r, N * sizeof(int));
    r->targets = tr_run_alloc(r, N * sizeof(int));
    r->mtp_ids = tr_run_alloc(r, N * sizeof(int));
    r->mtp_targets = tr_run_alloc(r, N * sizeof(int));
    r->X0 = tr_run_alloc(r, N * hcD * sizeof(real));
    int n_layers = c->n_layers + (r->has_mtp ? 1 : 0);
    r->layers = tr_run_alloc(r, (size_t)n_layers * sizeof(layer_acts));
    for (int li = 0; li < n_layers; li++) {
        layer_acts *la = &r->layers[li];
        la->Xf = tr_run_alloc(r, N * hcD * sizeof(real));
        la->Xo = tr_run_alloc(r, N * hcD * sizeof(real));
        hc_acts_init(r, c, &la->hca, (int)mix);
        hc_acts_init(r, c, &la->hcf, (int)mix);
        la->ya = tr_run_alloc(r, N * D * sizeof(real));
        la->ya_rstd = tr_run_alloc(r, N * sizeof(real));
        la->xa = tr_run_alloc(r, N * D * sizeof(real));
        la->attn_out = tr_run_alloc(r, N * D * sizeof(real));
        la->yf = tr_run_alloc(r, N * D * sizeof(real));
        la->yf_rstd = tr_run_alloc(r, N * sizeof(real));
        la->xf = tr_run_alloc(r, N * D * sizeof(real));
        la->ffn_out = tr_run_alloc(r, N * D * sizeof(real));
        attn_acts_init(r, m, &m->layers[li], &la->attn);
        moe_acts_init(r, m, &la->moe);
    }
    head_acts_init(r, c, &r->head);
    if (r->has_mtp) {
        head_acts_init(r, c, &r->mtp_head);
        r->e = tr_run_alloc(r, N * D * sizeof(real));
        r->e_rstd = tr_run_alloc(r, N * sizeof(real));
        r->en = tr_run_alloc(r, N * D * sizeof(real));
        r->ep = tr_run_alloc(r, N * D * sizeof(real));
        r->hn = tr_run_alloc(r, N * hcD * sizeof(real));
        r->hn_rstd = tr_run_alloc(r, N * c->hc_mult * sizeof(real));
        r->Xm0 = tr_run_alloc(r, N * hcD * sizeof(real));
    }
}

void tr_run_free(tr_run *r) {
    for (int i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    memset(r, 0, sizeof *r);
}

static void block_forward_train(const tr_model *m, const tr_layer *l, const tr_opts *o, tr_run *r, layer_acts *la, const real *Xin,
                                const int *ids) {
    const v4c_config *c = &m->cfg;
    int D = c->hidden_size, N = r->N, mix = (2 + c->hc_mult) * c->hc_mult;
    la->Xa = (real *)Xin;
    hc_pre_forward(c, P(m, l->hc_attn.fn), P(m, l->hc_attn.base), P(m, l->hc_attn.scale), mix, la->Xa, N, &la->hca, la->ya);
    rmsnorm_forward(la->xa, la->ya_rstd, la->ya, P(m, l->attn_norm), N, D, c->norm_eps);
    attn_forward(m, l, o, r->B, r->T, la->xa, &la->attn, la->attn_out);
    hc_post_forward(c, la->Xf, la->Xa, la->attn_out, &la->hca, N);
    hc_pre_forward(c, P(m, l->hc_ffn.fn), P(m, l->hc_ffn.base), P(m, l->hc_ffn.scale), mix, la->Xf, N, &la->hcf, la->yf);
    rmsnorm_forward(la->xf, la->yf_rstd, la->yf, P(m, l->ffn_norm), N, D, c->norm_eps);
    moe_forward_train(m, l, o, r->B, r->T, la->xf, ids, &la->moe, la->ffn_out);
    hc_post_forward(c, la->Xo, la->Xf, la->ffn_out, &la->hcf, N);
}

/* dXo -> dXin (+=) and parameter gradients. */
static void block_backward_train(tr_model *m, const tr_layer *l, const tr_opts *o, tr_run *r, const layer_acts *la, const real *dXo, real *dXin) {
    const v4c_config *c = &m->cfg;
    int D = c->hidden_size, N = r->N, hc = c->hc_mult, mix = (2 + hc) * hc;
    size_t hcD = (size_t)hc * D;
    real *dXf = xcalloc((size_t)N * hcD, sizeof(real)), *df = xmalloc((size_t)N * D * sizeof(real));
    real *dpost = xmalloc((size_t)N * hc * sizeof(real)), *dcomb = xmalloc((size_t)N * hc * hc * sizeof(real));
    real *dx = xcalloc((size_t)N * D, sizeof(real)), *dy = xcalloc((size_t)N * D, sizeof(real));

    hc_post_backward(c, dXo, la->Xf, la->ffn_out, &la->hcf, N, dXf, df, dpost, dcomb);
    moe_backward_train(m, l, o, r->B, r->T, la->xf, &la->moe, df, dx);
    rmsnorm_backward(dy, G(m, l->ffn_norm), dx, la->yf, P(m, l->ffn_norm), la->yf_rstd, N, D);
    hc_pre_backward(c, P(m, l->hc_ffn.fn), P(m, l->hc_ffn.base), P(m, l->hc_ffn.scale), mix, la->Xf, N, &la->hcf, dy, dpost, dcomb, dXf,
                    G(m, l->hc_ffn.fn), G(m, l->hc_ffn.base), G(m, l->hc_ffn.scale));

    memset(dx, 0, (size_t)N * D * sizeof(real));
    memset(dy, 0, (size_t)N * D * sizeof(real));
    hc_post_backward(c, dXf, la->Xa, la->attn_out, &la->hca, N, dXin, df, dpost, dcomb);
    attn_backward(m, l, o, r->B, r->T, la->xa, &la->attn, df, dx);
    rmsnorm_backward(dy, G(m, l->attn_norm), dx, la->ya, P(m, l->attn_norm), la->ya_rstd, N, D);
    hc_pre_backward(c, P(m, l->hc_attn.fn), P(m, l->hc_attn.base), P(m, l->hc_attn.scale), mix, la->Xa, N, &la->hca, dy, dpost, dcomb, dXin,
                    G(m, l->hc_attn.fn), G(m, l->hc_attn.base), G(m, l->hc_attn.scale));
    free(dy);
    free(dx);
    free(dcomb);
    free(dpost);
    free(df);
    free(dXf);
}

static void head_forward(const tr_model *m, const tr_hc *hw, size_t norm, head_acts *h, const real *X, int N) {
    const v4c_config *c = &m->cfg;
    int D = c->hidden_size;
    h->X = (real *)X;
    hc_pre_forward(c, P(m, hw->fn), P(m, hw->base), P(m, hw->scale), c->hc_mult, X, N, &h->hc, h->y);
    rmsnorm_forward(h->yn, h->rstd, h->y, P(m, norm), N, D, c->norm_eps);
    linear_forward(h->logits, c->vocab_size, h->yn, D, P(m, m->head), D, N, D, c->vocab_size);
}

/* h->logits holds dlogits; dX (+=). */
static void head_backward(tr_model *m, const tr_hc *hw, size_t norm, const head_acts *h, int N, real *dX) {
    const v4c_config *c = &m->cfg;
    int D = c->hidden_size;
    real *dyn = xcalloc((size_t)N * D, sizeof(real)), *dy = xcalloc((size_t)N * D, sizeof(real));
    linear_backward(dyn, D, G(m, m->head), h->logits, c->vocab_size, h->yn, D, P(m, m->head), D, N, D, c->vocab_size);
    rmsnorm_backward(dy, G(m, norm), dyn, h->y, P(m, norm), h->rstd, N, D);
    hc_pre_backward(c, P(m, hw->fn), P(m, hw->base), P(m, hw->scale), c->hc_mult, h->X, N, &h->hc, dy, NULL, NULL, dX, G(m, hw->fn),
                    G(m, hw->base), G(m, hw->scale));
    free(dy);
    free(dyn);
}

void tr_forward(const tr_model *m, const tr_opts *o, tr_run *r, const int32_t *tokens) {
    const v4c_config *c = &m->cfg;
    int D = c->hidden_size, hc = c->hc_mult, N = r->N, T = r->T, L = c->n_layers;
    for (int i = 0; i < N; i++) {
        const int32_t *row = tokens + (size_t)(i / T) * (T + 2) + i % T;
        r->ids[i] = row[0];
        r->targets[i] = row[1];
        r->mtp_ids[i] = row[1];
        r->mtp_targets[i] = row[2];
        for (int j = 0; j < hc; j++) {
            real *dst = r->X0 + ((size_t)i * hc + j) * D;
            const real *e = P(m, m->embed) + (size_t)row[0] * D;
            memcpy(dst, e, (size_t)D * sizeof(real));
        }
    }
    const real *X = r->X0;
    for (int l = 0; l < L; l++) {
        block_forward_train(m, &m->layers[l], o, r, &r->layers[l], X, r->ids);
        X = r->layers[l].Xo;
    }
    head_forward(m, &m->hc_head, m->norm, &r->head, X, N);
    if (!r->has_mtp) return;

    /* MTP block 0 (MODEL.md §6): e_proj RMSNorm(embed[t+1]) + h_proj RMSNorm(X_t) per stream */
    const tr_layer *ml = &m->layers[L];
    for (int i = 0; i < N; i++) memcpy(r->e + (size_t)i * D, P(m, m->embed) + (size_t)r->mtp_ids[i] * D, (size_t)D * sizeof(real));
    rmsnorm_forward(r->en, r->e_rstd, r->e, P(m, ml->enorm), N, D, c->norm_eps);
    linear_forward(r->ep, D, r->en, D, P(m, ml->e_proj), D, N, D, D);
    rmsnorm_forward(r->hn, r->hn_rstd, X, P(m, ml->hnorm), N * hc, D, c->norm_eps);
    linear_forward(r->Xm0, D, r->hn, D, P(m, ml->h_proj), D, N * hc, D, D);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < hc; j++)
            for (int d = 0; d < D; d++) r->Xm0[((size_t)i * hc + j) * D + d] += r->ep[(size_t)i * D + d];
    block_forward_train(m, ml, o, r, &r->layers[L], r->Xm0, r->mtp_ids);
    head_forward(m, &ml->hc_head, ml->norm, &r->mtp_head, r->layers[L].Xo, N);
}

double tr_loss(const tr_model *m, const tr_opts *o, tr_run *r) {
    const v4c_config *c = &m->cfg;
    r->loss_main = crossentropy_forward(r->head.logits, r->targets, r->N, c->vocab_size) / r->N;
    r->loss_mtp = r->has_mtp ? crossentropy_forward(r->mtp_head.logits, r->mtp_targets, r->N, c->vocab_size) / r->N : 0;
    r->loss_balance = r->loss_kl = 0;
    for (int l = 0; l < c->n_layers + (r->has_mtp ? 1 : 0); l++) {
        r->loss_balance += r->layers[l].moe.balance;
        const attn_acts *a = &r->layers[l].attn;
        if (m->layers[l].ratio == 4 && o->kl_weight > 0 && a->kl_rows) r->loss_kl += a->kl / a->kl_rows;
    }
    r->loss = r->loss_main + o->mtp_weight * r->loss_mtp + r->loss_balance + o->kl_weight * r->loss_kl;
    return r->loss;
}

void tr_backward(tr_model *m, const tr_opts *o, tr_run *r) {
    const v4c_config *c = &m->cfg;
    int D = c->hidden_size, hc = c->hc_mult, N = r->N, L = c->n_layers;
    size_t hcD = (size_t)hc * D;
    real *dX = xcalloc((size_t)N * hcD, sizeof(real)), *dXin = xcalloc((size_t)N * hcD, sizeof(real));
    crossentropy_backward(r->head.logits, r->targets, N, c->vocab_size, (real)1 / N);
    head_backward(m, &m->hc_head, m->norm, &r->head, N, dX);
    if (r->has_mtp) {
        const tr_layer *ml = &m->layers[L];
        real *dXm = xcalloc((size_t)N * hcD, sizeof(real)), *dXm0 = xcalloc((size_t)N * hcD, sizeof(real));
        crossentropy_backward(r->mtp_head.logits, r->mtp_targets, N, c->vocab_size, o->mtp_weight / N);
        head_backward(m, &ml->hc_head, ml->norm, &r->mtp_head, N, dXm);
        block_backward_train(m, ml, o, r, &r->layers[L], dXm, dXm0);
        real *dhn = xcalloc((size_t)N * hcD, sizeof(real)), *dep = xcalloc((size_t)N * D, sizeof(real));
        real *den = xcalloc((size_t)N * D, sizeof(real)), *de = xcalloc((size_t)N * D, sizeof(real));
        linear_backward(dhn, D, G(m, ml->h_proj), dXm0, D, r->hn, D, P(m, ml->h_proj), D, N * hc, D, D);
        rmsnorm_backward(dX, G(m, ml->hnorm), dhn, r->layers[L - 1].Xo, P(m, ml->hnorm), r->hn_rstd, N * hc, D);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < hc; j++)
                for (int d = 0; d < D; d++) dep[(size_t)i * D + d] += dXm0[((size_t)i * hc + j) * D + d];
        linear_backward(den, D, G(m, ml->e_proj), dep, D, r->en, D, P(m, ml->e_proj), D, N, D, D);
        rmsnorm_backward(de, G(m, ml->enorm), den, r->e, P(m, ml->enorm), r->e_rstd, N, D);
        for (int i = 0; i < N; i++)
            for (int d = 0; d < D; d++) G(m, m->embed)[(size_t)r->mtp_ids[i] * D + d] += de[(size_t)i * D + d];
        free(de);
        free(den);
        free(dep);
        free(dhn);
        free(dXm0);
        free(dXm);
    }
    for (int l = L - 1; l >= 0; l--) {
        memset(dXin, 0, (size_t)N * hcD * sizeof(real));
        block_backward_train(m, &m->layers[l], o, r, &r->layers[l], dX, dXin);
        real *t = dX;
        dX = dXin;
        dXin = t;
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < hc; j++)
            for (int d = 0; d < D; d++) G(m, m->embed)[(size_t)r->ids[i] * D + d] += dX[((size_t)i * hc + j) * D + d];
    free(dXin);
    free(dX);
}
