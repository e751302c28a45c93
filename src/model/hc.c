/* Manifold-constrained hyper-connections, MODEL.md §3. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"
#include "util/workmem.h"

void hc_sinkhorn(float *C, int hc, int iters, float eps) {
    for (int i = 0; i < hc; i++) {
        float *row = C + i * hc, mx = row[0], sum = 0;
        for (int j = 1; j < hc; j++) mx = fmaxf(mx, row[j]);
        for (int j = 0; j < hc; j++) sum += row[j] = expf(row[j] - mx);
        for (int j = 0; j < hc; j++) row[j] = row[j] / sum + eps;
    }
    for (int it = 0; it < iters; it++) {
        if (it > 0)
            for (int i = 0; i < hc; i++) {
                float sum = 0;
                for (int j = 0; j < hc; j++) sum += C[i * hc + j];
                for (int j = 0; j < hc; j++) C[i * hc + j] /= sum + eps;
            }
        for (int j = 0; j < hc; j++) {
            float sum = 0;
            for (int i = 0; i < hc; i++) sum += C[i * hc + j];
            for (int i = 0; i < hc; i++) C[i * hc + j] /= sum + eps;
        }
    }
}

/* mix[n, rows] = (fn . flat) * rms(flat) for each token's flattened streams. */
static void hc_mix(const v4c_config *c, const float *fn, int rows, const float *X, int n, float *mix) {
    int width = c->hc_mult * c->hidden_size;
    v4c_matrix W = {.kind = WK_F32, .op = OP_OTHER, .rows = rows, .cols = width, .data = fn};
    matmul(mix, rows, &W, 0, rows, X, width, n);
    for (int t = 0; t < n; t++) {
        float r = rms_scale(X + (size_t)t * width, width, c->norm_eps);
        for (int k = 0; k < rows; k++) mix[t * rows + k] *= r;
    }
}

void hc_pre(const v4c_config *c, const hc_weights *w, const float *X, int n, float *y, float *post, float *comb) {
    int hc = c->hc_mult, D = c->hidden_size, rows = (2 + hc) * hc;
    float *mix = work_alloc((size_t)n * rows * sizeof(float));
    hc_mix(c, w->fn, rows, X, n, mix);
#pragma omp parallel for if (n >= 4)
    for (int t = 0; t < n; t++) {
        const float *mx = mix + (size_t)t * rows, *Xt = X + (size_t)t * hc * D;
        float *yt = y + (size_t)t * D, *C = comb + (size_t)t * hc * hc;
        float pre[16]; /* hc_mult <= 16 (config.c) */
        for (int i = 0; i < hc; i++) {
            pre[i] = sigmoidf(mx[i] * w->scale[0] + w->base[i]) + c->hc_eps;
            post[t * hc + i] = 2.0f * sigmoidf(mx[hc + i] * w->scale[1] + w->base[hc + i]);
        }
        weighted_rows(yt, Xt, pre, hc, D);
        for (int k = 0; k < hc * hc; k++) C[k] = mx[2 * hc + k] * w->scale[2] + w->base[2 * hc + k];
        hc_sinkhorn(C, hc, c->hc_sinkhorn_iters, c->hc_eps);
    }
    work_free(mix);
}

/* Tokens are independent and split between threads when there are a few. */
void hc_post(const v4c_config *c, float *X, const float *a, const float *post, const float *comb, int n) {
    int hc = c->hc_mult, D = c->hidden_size;
#pragma omp parallel for if (n >= 4 && (size_t)n * hc * D >= 4096)
    for (int t = 0; t < n; t++) hc_combine(X + (size_t)t * hc * D, a + (size_t)t * D, post + (size_t)t * hc, comb + (size_t)t * hc * hc, hc, D);
}

void hc_head(const v4c_config *c, const hc_head_weights *w, const float *X, int n, float *y) {
    int hc = c->hc_mult, D = c->hidden_size;
    float *mix = work_alloc((size_t)n * hc * sizeof(float));
    hc_mix(c, w->fn, hc, X, n, mix);
    for (int t = 0; t < n; t++) {
        const float *Xt = X + (size_t)t * hc * D;
        float *yt = y + (size_t)t * D;
        float wi[16];
        for (int i = 0; i < hc; i++) wi[i] = sigmoidf(mix[t * hc + i] * w->scale[0] + w->base[i]) + c->hc_eps;
        weighted_rows(yt, Xt, wi, hc, D);
    }
    work_free(mix);
}
