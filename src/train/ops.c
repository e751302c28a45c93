#include "train/ops.h"

#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "util/util.h"

void linear_forward(real *y, int ldy, const real *x, int ldx, const real *W, int ldw, int n, int in, int out) {
    gemm(0, 1, n, out, in, 1, x, ldx, W, ldw, 0, y, ldy);
}

void linear_backward(real *dx, int lddx, real *dW, const real *dy, int lddy, const real *x, int ldx, const real *W, int ldw, int n, int in,
                     int out) {
    if (dx) gemm(0, 0, n, in, out, 1, dy, lddy, W, ldw, 1, dx, lddx);
    if (dW) gemm(1, 0, out, in, n, 1, dy, lddy, x, ldx, 1, dW, ldw);
}

void rmsnorm_forward(real *out, real *rstd, const real *v, const real *w, int n, int d, real eps) {
#pragma omp parallel for if (n > 64)
    for (int r = 0; r < n; r++) {
        const real *vr = v + (size_t)r * d;
        real ss = 0;
        for (int i = 0; i < d; i++) ss += vr[i] * vr[i];
        real s = 1 / sqrt(ss / d + eps);
        rstd[r] = s;
        real *o = out + (size_t)r * d;
        for (int i = 0; i < d; i++) o[i] = vr[i] * s * (w ? w[i] : 1);
    }
}

void rmsnorm_backward(real *dv, real *dw, const real *dout, const real *v, const real *w, const real *rstd, int n, int d) {
    for (int r = 0; r < n; r++) {
        const real *vr = v + (size_t)r * d, *g = dout + (size_t)r * d;
        real s = rstd[r], dot = 0;
        for (int i = 0; i < d; i++) dot += g[i] * (w ? w[i] : 1) * vr[i];
        real *dvr = dv + (size_t)r * d, k = s * s * s * dot / d;
        for (int i = 0; i < d; i++) {
            dvr[i] += s * g[i] * (w ? w[i] : 1) - k * vr[i];
            if (dw) dw[i] += g[i] * vr[i] * s;
        }
    }
}

void rope_apply(real *v, int R, const float *freqs, int pos, int inverse) {
    for (int i = 0; i < R / 2; i++) {
        float angle = (float)pos * freqs[i]; /* as the engine computes it */
        real c = cos((real)angle), s = sin((real)angle);
        if (inverse) s = -s;
        real a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c - b * s;
        v[2 * i + 1] = a * s + b * c;
    }
}

void hadamard_r(real *v, int n) {
    for (int h = 1; h < n; h *= 2)
        for (int i = 0; i < n; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                real a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

static void quant_r(real *v, int n, int block, void (*q)(float *, int, int)) {
    if (!REAL_IS_DOUBLE) {
        q((float *)(void *)v, n, block);
        return;
    }
    float *tmp = xmalloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) tmp[i] = (float)v[i];
    q(tmp, n, block);
    for (int i = 0; i < n; i++) v[i] = tmp[i];
    free(tmp);
}
void quant_fp8_r(real *v, int n, int block) { quant_r(v, n, block, fp8_quant); }
void quant_fp4_r(real *v, int n, int block) { quant_r(v, n, block, fp4_quant); }

double crossentropy_forward(real *logits, const int *targets, int n, int V) {
    double loss = 0;
#pragma omp parallel for reduction(+ : loss)
    for (int r = 0; r < n; r++) {
        real *l = logits + (size_t)r * V, mx = l[0], sum = 0;
        for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        for (int v = 0; v < V; v++) sum += l[v] = exp(l[v] - mx);
        for (int v = 0; v < V; v++) l[v] /= sum;
        if (targets[r] >= 0) loss -= log(l[targets[r]] > 1e-30 ? (double)l[targets[r]] : 1e-30);
    }
    return loss;
}

void crossentropy_backward(real *probs, const int *targets, int n, int V, real scale) {
#pragma omp parallel for
    for (int r = 0; r < n; r++) {
        real *p = probs + (size_t)r * V;
        if (targets[r] < 0) {
            memset(p, 0, (size_t)V * sizeof(real));
            continue;
        }
        for (int v = 0; v < V; v++) p[v] *= scale;
        p[targets[r]] -= scale;
    }
}
