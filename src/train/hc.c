#include "train/hc.h"

#include <stdlib.h>
#include <string.h>

#include "train/ops.h"
#include "util/util.h"

static void softmax_rows_eps(real *C, int hc, real eps) {
    for (int i = 0; i < hc; i++) {
        real *row = C + i * hc, mx = row[0], sum = 0;
        for (int j = 1; j < hc; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < hc; j++) sum += row[j] = exp(row[j] - mx);
        for (int j = 0; j < hc; j++) row[j] = row[j] / sum + eps;
    }
}

/* C[i][j] /= (sum along the other index + eps); by_col: sum over i. */
static void normalise(real *C, int hc, int by_col, real eps) {
    for (int a = 0; a < hc; a++) {
        real sum = 0;
        for (int b = 0; b < hc; b++) sum += by_col ? C[b * hc + a] : C[a * hc + b];
        for (int b = 0; b < hc; b++) C[by_col ? b * hc + a : a * hc + b] /= sum + eps;
    }
}

static void normalise_backward(const real *in, real *d, int hc, int by_col, real eps) {
    for (int a = 0; a < hc; a++) {
        real sum = 0, dot = 0;
        for (int b = 0; b < hc; b++) {
            int k = by_col ? b * hc + a : a * hc + b;
            sum += in[k];
        }
        sum += eps;
        for (int b = 0; b < hc; b++) {
            int k = by_col ? b * hc + a : a * hc + b;
            dot += d[k] * in[k];
        }
        for (int b = 0; b < hc; b++) {
            int k = by_col ? b * hc + a : a * hc + b;
            d[k] = d[k] / sum - dot / (sum * sum);
        }
    }
}

void sinkhorn_forward(real *C, int hc, int iters, real eps) {
    softmax_rows_eps(C, hc, eps);
    for (int it = 0; it < iters; it++) {
        if (it > 0) normalise(C, hc, 0, eps);
        normalise(C, hc, 1, eps);
    }
}

void sinkhorn_backward(const real *z, const real *dC, real *dz, int hc, int iters, real eps) {
    int hh = hc * hc, n_norm = 2 * iters - 1 > 0 ? 2 * iters - 1 : 0;
    real *states = xmalloc((size_t)(n_norm + 1) * hh * sizeof(real)), *d = xmalloc((size_t)hh * sizeof(real));
    memcpy(states, z, (size_t)hh * sizeof(real));
    softmax_rows_eps(states, hc, eps);
    real *p = xmalloc((size_t)hh * sizeof(real));
    for (int k = 0; k < hh; k++) p[k] = states[k] - eps;
    /* normalisation k (k = 0..n_norm-1) reads states[k]: col, then row/col pairs */
    for (int k = 0; k < n_norm; k++) {
        memcpy(states + (size_t)(k + 1) * hh, states + (size_t)k * hh, (size_t)hh * sizeof(real));
        normalise(states + (size_t)(k + 1) * hh, hc, k % 2 == 0, eps);
    }
    memcpy(d, dC, (size_t)hh * sizeof(real));
    for (int k = n_norm - 1; k >= 0; k--) normalise_backward(states + (size_t)k * hh, d, hc, k % 2 == 0, eps);
    for (int i = 0; i < hc; i++) {
        real dot = 0;
        for (int j = 0; j < hc; j++) dot += p[i * hc + j] * d[i * hc + j];
        for (int j = 0; j < hc; j++) dz[i * hc + j] = p[i * hc + j] * (d[i * hc + j] - dot);
    }
    free(p);
    free(d);
    free(states);
}

void hc_pre_forward(const v4c_config *c, const real *fn, const real *base, const real *scale, int rows, const real *X, int n, hc_acts *a,
                    real *y) {
    int hc = c->hc_mult, D = c->hidden_size, width = hc * D, head = rows == hc;
    linear_forward(a->mix, rows, X, width, fn, width, n, width, rows);
#pragma omp parallel for if (n > 16)
    for (int t = 0; t < n; t++) {
        const real *Xt = X + (size_t)t * width;
        real ss = 0;
        for (int k = 0; k < width; k++) ss += Xt[k] * Xt[k];
        real r = a->r[t] = 1 / sqrt(ss / width + c->norm_eps);
        real *mx = a->mix + (size_t)t * rows, *yt = y + (size_t)t * D;
        for (int k = 0; k < rows; k++) mx[k] *= r;
        memset(yt, 0, (size_t)D * sizeof(real));
        for (int i = 0; i < hc; i++) {
            real pre = a->pre[t * hc + i] = sigmoid_r(mx[i] * scale[0] + base[i]) + c->hc_eps;
            for (int d = 0; d < D; d++) yt[d] += pre * Xt[i * D + d];
        }
        if (head) continue;
        for (int j = 0; j < hc; j++) a->post[t * hc + j] = 2 * sigmoid_r(mx[hc + j] * scale[1] + base[hc + j]);
        real *C = a->comb + (size_t)t * hc * hc;
        for (int k = 0; k < hc * hc; k++) C[k] = mx[2 * hc + k] * scale[2] + base[2 * hc + k];
        sinkhorn_forward(C, hc, c->hc_sinkhorn_iters, c->hc_eps);
    }
}

void hc_pre_backward(const v4c_config *c, const real *fn, const real *base, const real *scale, int rows, const real *X, int n,
                     const hc_acts *a, const real *dy, const real *dpost, const real *dcomb, real *dX, real *dfn, real *dbase,
                     real *dscale) {
    int hc = c->hc_mult, D = c->hidden_size, width = hc * D, head = rows == hc, hh = hc * hc;
    real *dmixr = xcalloc((size_t)n * rows, sizeof(real)), *z = xmalloc((size_t)hh * sizeof(real)), *dz = xmalloc((size_t)hh * sizeof(real));
    for (int t = 0; t < n; t++) {
        const real *Xt = X + (size_t)t * width, *dyt = dy + (size_t)t * D, *mx = a->mix + (size_t)t * rows;
        real *dXt = dX + (size_t)t * width, *dm = dmixr + (size_t)t * rows, r = a->r[t];
        for (int i = 0; i < hc; i++) {
            real dpre = 0, pre = a->pre[t * hc + i];
            for (int d = 0; d < D; d++) {
                dpre += dyt[d] * Xt[i * D + d];
                dXt[i * D + d] += pre * dyt[d];
            }
            real s = pre - c->hc_eps, dzp = dpre * s * (1 - s);
            dm[i] = dzp * scale[0];
            dscale[0] += dzp * mx[i];
            dbase[i] += dzp;
        }
        if (!head) {
            for (int j = 0; j < hc; j++) {
                real s = a->post[t * hc + j] / 2, dzp = dpost[t * hc + j] * 2 * s * (1 - s);
                dm[hc + j] = dzp * scale[1];
                dscale[1] += dzp * mx[hc + j];
                dbase[hc + j] += dzp;
            }
            for (int k = 0; k < hh; k++) z[k] = mx[2 * hc + k] * scale[2] + base[2 * hc + k];
            sinkhorn_backward(z, dcomb + (size_t)t * hh, dz, hc, c->hc_sinkhorn_iters, c->hc_eps);
            for (int k = 0; k < hh; k++) {
                dm[2 * hc + k] = dz[k] * scale[2];
                dscale[2] += dz[k] * mx[2 * hc + k];
                dbase[2 * hc + k] += dz[k];
            }
        }
        /* mix = mixr * r: d mixr = dm * r; dr = dm . mixr = dm . mix / r */
        real dr = 0;
        for (int k = 0; k < rows; k++) {
            dr += dm[k] * mx[k] / r;
            dm[k] *= r;
        }
        real coef = -dr * r * r * r / width;
        for (int k = 0; k < width; k++) dXt[k] += coef * Xt[k];
    }
    linear_backward(dX, width, dfn, dmixr, rows, X, width, fn, width, n, width, rows);
    free(dz);
    free(z);
    free(dmixr);
}

void hc_post_forward(const v4c_config *c, real *Xout, const real *Xin, const real *f, const hc_acts *a, int n) {
    int hc = c->hc_mult, D = c->hidden_size;
#pragma omp parallel for if (n > 16)
    for (int t = 0; t < n; t++) {
        const real *Xi = Xin + (size_t)t * hc * D, *ft = f + (size_t)t * D, *C = a->comb + (size_t)t * hc * hc;
        real *Xo = Xout + (size_t)t * hc * D;
        for (int j = 0; j < hc; j++)
            for (int d = 0; d < D; d++) {
                real s = a->post[t * hc + j] * ft[d];
                for (int i = 0; i < hc; i++) s += C[i * hc + j] * Xi[i * D + d];
                Xo[j * D + d] = s;
            }
    }
}

void hc_post_backward(const v4c_config *c, const real *dXout, const real *Xin, const real *f, const hc_acts *a, int n, real *dXin, real *df,
                      real *dpost, real *dcomb) {
    int hc = c->hc_mult, D = c->hidden_size;
#pragma omp parallel for if (n > 16)
    for (int t = 0; t < n; t++) {
        const real *Xi = Xin + (size_t)t * hc * D, *ft = f + (size_t)t * D, *C = a->comb + (size_t)t * hc * hc;
        const real *dXo = dXout + (size_t)t * hc * D;
        real *dXi = dXin + (size_t)t * hc * D, *dft = df + (size_t)t * D;
        memset(dft, 0, (size_t)D * sizeof(real));
        for (int j = 0; j < hc; j++) {
            real p = a->post[t * hc + j], dp = 0;
            for (int d = 0; d < D; d++) {
                dft[d] += p * dXo[j * D + d];
                dp += dXo[j * D + d] * ft[d];
            }
            dpost[t * hc + j] = dp;
        }
        for (int i = 0; i < hc; i++)
            for (int j = 0; j < hc; j++) {
                real dc = 0, cij = C[i * hc + j];
                for (int d = 0; d < D; d++) {
                    dc += dXo[j * D + d] * Xi[i * D + d];
                    dXi[i * D + d] += cij * dXo[j * D + d];
                }
                dcomb[(size_t)t * hc * hc + i * hc + j] = dc;
            }
    }
}
