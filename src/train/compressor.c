/* KV compressors (MODEL.md §4 "Compressor") over whole sequences: forward
 * and backward. Entry j of sequence b is row b*nb + j, nb = T / m. */
#include <stdlib.h>
#include <string.h>

#include "train/compressor.h"
#include "train/ops.h"
#include "util/util.h"

void comp_acts_init(tr_run *r, const tr_compressor *cw, comp_acts *a) {
    int W = cw->overlap * cw->dim, nb = r->T / cw->ratio;
    a->K = tr_run_alloc(r, (size_t)r->N * W * sizeof(real));
    a->S = tr_run_alloc(r, (size_t)r->N * W * sizeof(real));
    a->pool = tr_run_alloc(r, (size_t)r->B * nb * cw->dim * sizeof(real) + 1);
    a->rstd = tr_run_alloc(r, (size_t)r->B * nb * sizeof(real) + 1);
    a->ent = tr_run_alloc(r, (size_t)r->B * nb * cw->dim * sizeof(real) + 1);
}

/* Entry j pools n_items(j) items per feature f: in the overlapping case
 * first block j-1's positions at column f, then block j's at column d + f. */
static int n_items(const tr_compressor *cw, int j) { return (cw->overlap == 2 && j > 0 ? 2 : 1) * cw->ratio; }

static size_t item_index(const tr_compressor *cw, int b, int T, int j, int f, int i) {
    int m = cw->ratio, d = cw->dim, W = cw->overlap * d, ov = cw->overlap == 2;
    if (ov && j > 0) {
        if (i < m) return ((size_t)b * T + (j - 1) * m + i) * W + f;
        i -= m;
    }
    return ((size_t)b * T + j * m + i) * W + (ov ? d : 0) + f;
}

void comp_forward(const tr_model *m, const tr_compressor *cw, const float *freqs, int B, int T, const real *x, comp_acts *a, int for_indexer,
                  int quant) {
    const v4c_config *c = &m->cfg;
    int mr = cw->ratio, d = cw->dim, W = cw->overlap * d, D = c->hidden_size, R = c->rope_dim, N = B * T, nb = T / mr;
    linear_forward(a->K, W, x, D, P(m, cw->wkv), D, N, D, W);
    linear_forward(a->S, W, x, D, P(m, cw->wgate), D, N, D, W);
    const real *ape = P(m, cw->ape);
    for (int t = 0; t < N; t++)
        for (int f = 0; f < W; f++) a->S[(size_t)t * W + f] += ape[(size_t)((t % T) % mr) * W + f];
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < nb; j++) {
            real *pool = a->pool + ((size_t)b * nb + j) * d;
            int n = n_items(cw, j);
            for (int f = 0; f < d; f++) {
                real mx = -1e30, num = 0, den = 0;
                for (int i = 0; i < n; i++) {
                    real s = a->S[item_index(cw, b, T, j, f, i)];
                    mx = s > mx ? s : mx;
                }
                for (int i = 0; i < n; i++) {
                    size_t k = item_index(cw, b, T, j, f, i);
                    real e = exp(a->S[k] - mx);
                    den += e;
                    num += e * a->K[k];
                }
                pool[f] = num / den;
            }
        }
    rmsnorm_forward(a->ent, a->rstd, a->pool, P(m, cw->norm), B * nb, d, c->norm_eps);
    for (int e = 0; e < B * nb; e++) {
        real *v = a->ent + (size_t)e * d;
        rope_apply(v + d - R, R, freqs, (e % nb) * mr, 0);
        if (for_indexer) {
            hadamard_r(v, d);
            for (int f = 0; f < d; f++) v[f] /= sqrt((real)d);
            if (quant) quant_fp4_r(v, d, 32);
        } else if (quant) {
            quant_fp8_r(v, d - R, 64);
        }
    }
}

void comp_backward(tr_model *m, const tr_compressor *cw, const float *freqs, int B, int T, const real *x, const comp_acts *a, const real *dent_in,
                   int for_indexer, real *dx) {
    const v4c_config *c = &m->cfg;
    int mr = cw->ratio, d = cw->dim, W = cw->overlap * d, D = c->hidden_size, R = c->rope_dim, N = B * T, nb = T / mr;
    if (nb == 0) return;
    real *dent = xmalloc((size_t)B * nb * d * sizeof(real)), *dpool = xcalloc((size_t)B * nb * d, sizeof(real));
    memcpy(dent, dent_in, (size_t)B * nb * d * sizeof(real));
    for (int e = 0; e < B * nb; e++) { /* quantization: straight through */
        real *v = dent + (size_t)e * d;
        if (for_indexer) {
            for (int f = 0; f < d; f++) v[f] /= sqrt((real)d);
            hadamard_r(v, d); /* symmetric */
        }
        rope_apply(v + d - R, R, freqs, (e % nb) * mr, 1);
    }
    rmsnorm_backward(dpool, G(m, cw->norm), dent, a->pool, P(m, cw->norm), a->rstd, B * nb, d);
    real *dK = xcalloc((size_t)N * W, sizeof(real)), *dS = xcalloc((size_t)N * W, sizeof(real));
#pragma omp parallel for
    for (int b = 0; b < B; b++)
        for (int j = 0; j < nb; j++) { /* entries of one sequence overlap only within it: one thread per b */
            const real *pool = a->pool + ((size_t)b * nb + j) * d, *dp = dpool + ((size_t)b * nb + j) * d;
            int n = n_items(cw, j);
            for (int f = 0; f < d; f++) {
                real mx = -1e30, den = 0;
                for (int i = 0; i < n; i++) {
                    real s = a->S[item_index(cw, b, T, j, f, i)];
                    mx = s > mx ? s : mx;
                }
                for (int i = 0; i < n; i++) den += exp(a->S[item_index(cw, b, T, j, f, i)] - mx);
                for (int i = 0; i < n; i++) {
                    size_t k = item_index(cw, b, T, j, f, i);
                    real w = exp(a->S[k] - mx) / den;
                    dK[k] += w * dp[f];
                    dS[k] += w * dp[f] * (a->K[k] - pool[f]);
                }
            }
        }
    real *dape = G(m, cw->ape);
    for (int t = 0; t < N; t++)
        for (int f = 0; f < W; f++) dape[(size_t)((t % T) % mr) * W + f] += dS[(size_t)t * W + f];
    linear_backward(dx, D, G(m, cw->wkv), dK, W, x, D, P(m, cw->wkv), D, N, D, W);
    linear_backward(dx, D, G(m, cw->wgate), dS, W, x, D, P(m, cw->wgate), D, N, D, W);
    free(dK);
    free(dS);
    free(dpool);
    free(dent);
}
