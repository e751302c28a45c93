#include "train/optim.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

optim_params optim_defaults(void) {
    return (optim_params){.lr = 2.7e-4f, .warmup = 2000, .total = 10000, .weight_decay = 0.1f, .muon_momentum = 0.95f, .beta1 = 0.9f,
                          .beta2 = 0.95f, .adam_eps = 1e-20f, .clip = 1.0f, .bias_gamma = 0.001f, .use_muon = 1};
}

void optim_init(optimizer *o, const tr_model *m, const optim_params *p) {
    memset(o, 0, sizeof *o);
    o->p = *p;
    o->m = xcalloc(m->n_params, sizeof(real));
    o->v = xcalloc(m->n_params, sizeof(real));
    size_t biggest = 0;
    for (int i = 0; i < m->n_info; i++) {
        size_t n = (size_t)m->info[i].rows * (m->info[i].cols ? m->info[i].cols : 1);
        biggest = n > biggest ? n : biggest;
    }
    int big_dim = 0;
    for (int i = 0; i < m->n_info; i++) {
        int d = m->info[i].rows < m->info[i].cols ? m->info[i].rows : m->info[i].cols;
        big_dim = d > big_dim ? d : big_dim;
    }
    /* NS needs X, its transpose and two small square products */
    o->scratch = xmalloc((2 * biggest + 3 * (size_t)big_dim * big_dim + 1) * sizeof(real));
}

void optim_free(optimizer *o) {
    free(o->m);
    free(o->v);
    free(o->scratch);
    memset(o, 0, sizeof *o);
}

float optim_lr(const optim_params *p, int step) {
    if (step < p->warmup) return p->lr * (step + 1) / p->warmup;
    double t = p->total > p->warmup ? (double)(step - p->warmup) / (p->total - p->warmup) : 1;
    if (t > 1) t = 1;
    return (float)(p->lr * (0.1 + 0.9 * 0.5 * (1 + cos(M_PI * t))));
}

static void ns_iterate(real *X, int r, int c, real a, real b, real cc, real *A, real *B, real *Y) {
    gemm(0, 1, r, r, c, 1, X, c, X, c, 0, A, r);          /* A = X X^T */
    gemm(0, 0, r, r, r, cc, A, r, A, r, 0, B, r);         /* B = c A A */
    for (int i = 0; i < r * r; i++) B[i] += b * A[i];     /*   + b A */
    gemm(0, 0, r, c, r, 1, B, r, X, c, 0, Y, c);          /* Y = B X */
    for (size_t i = 0; i < (size_t)r * c; i++) X[i] = a * X[i] + Y[i];
}

static void ns_run(real *X, int r, int c, int fast, int slow, real *work) {
    real *A = work, *B = A + (size_t)r * r, *Y = B + (size_t)r * r;
    for (int s = 0; s < fast; s++) ns_iterate(X, r, c, 3.4445, -4.7750, 2.0315, A, B, Y);
    for (int s = 0; s < slow; s++) ns_iterate(X, r, c, 2, -1.5, 0.5, A, B, Y);
}

void newton_schulz(real *X, int rows, int cols, int fast_steps, int slow_steps) {
    int r = rows < cols ? rows : cols, c = rows < cols ? cols : rows;
    real *work = xmalloc(((size_t)2 * r * r + (size_t)r * c + (size_t)rows * cols) * sizeof(real));
    real *Xt = work + (size_t)2 * r * r + (size_t)r * c;
    if (rows > cols) { /* work on the transpose: the Gram matrix is the small side */
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) Xt[(size_t)j * rows + i] = X[(size_t)i * cols + j];
        ns_run(Xt, r, c, fast_steps, slow_steps, work);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) X[(size_t)i * cols + j] = Xt[(size_t)j * rows + i];
    } else {
        ns_run(X, r, c, fast_steps, slow_steps, work);
    }
    free(work);
}

double optim_step(optimizer *o, tr_model *m) {
    const optim_params *p = &o->p;
    double norm2 = 0;
    for (int i = 0; i < m->n_info; i++) {
        const param_info *pi = &m->info[i];
        if (pi->opt == OPT_NONE) continue;
        size_t n = (size_t)pi->rows * (pi->cols ? pi->cols : 1);
        for (size_t k = 0; k < n; k++) norm2 += (double)m->grads[pi->offset + k] * m->grads[pi->offset + k];
    }
    double norm = sqrt(norm2), clip = p->clip > 0 && norm > p->clip ? p->clip / norm : 1;
    real lr = optim_lr(p, o->step), wd = p->weight_decay;
    o->step++;
    real bc1 = 1 - pow(p->beta1, o->step), bc2 = 1 - pow(p->beta2, o->step);
    for (int i = 0; i < m->n_info; i++) {
        const param_info *pi = &m->info[i];
        if (pi->opt == OPT_NONE) continue;
        size_t n = (size_t)pi->rows * (pi->cols ? pi->cols : 1);
        real *w = m->params + pi->offset, *g = m->grads + pi->offset, *M = o->m + pi->offset, *V = o->v + pi->offset;
        for (size_t k = 0; k < n; k++) g[k] *= clip;
        if (pi->opt == OPT_MUON && p->use_muon) {
            real mu = p->muon_momentum, *U = o->scratch, fro = 0;
            for (size_t k = 0; k < n; k++) {
                M[k] = mu * M[k] + g[k];
                U[k] = g[k] + mu * M[k]; /* Nesterov */
                fro += U[k] * U[k];
            }
            fro = sqrt(fro) + 1e-30;
            for (size_t k = 0; k < n; k++) U[k] /= fro;
            newton_schulz(U, pi->rows, pi->cols, 8, 2);
            real s = 0.18 * sqrt((real)(pi->rows > pi->cols ? pi->rows : pi->cols));
            for (size_t k = 0; k < n; k++) w[k] -= lr * (s * U[k] + wd * w[k]);
        } else {
            for (size_t k = 0; k < n; k++) {
                M[k] = p->beta1 * M[k] + (1 - p->beta1) * g[k];
                V[k] = p->beta2 * V[k] + (1 - p->beta2) * g[k] * g[k];
                w[k] -= lr * ((M[k] / bc1) / (sqrt(V[k] / bc2) + p->adam_eps) + wd * w[k]);
            }
        }
    }
    return norm;
}

void moe_bias_update(tr_model *m, const tr_run *r, float gamma) {
    const v4c_config *c = &m->cfg;
    int E = c->n_routed_experts, n = c->n_layers + (r->has_mtp ? 1 : 0);
    for (int l = 0; l < n; l++) {
        const tr_layer *L = &m->layers[l];
        if (L->is_hash) continue;
        const int *load = r->layers[l].moe.load;
        real mean = 0, *bias = P(m, L->gate_bias);
        for (int e = 0; e < E; e++) mean += (real)load[e] / E;
        for (int e = 0; e < E; e++) bias[e] += gamma * (mean > load[e] ? 1 : mean < load[e] ? -1 : 0);
    }
}
