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
        memset(yt, 0, D * sizeof(float));
        for (int i = 0; i < hc; i++) {
            float pre = sigmoidf(mx[i] * w->scale[0] + w->base[i]) + c->hc_eps;
            for (int d = 0; d < D; d++) yt[d] += pre * Xt[i * D + d];
            post[t * hc + i] = 2.0f * sigmoidf(mx[hc + i] * w->scale[1] + w->base[hc + i]);
        }
        for (int k = 0; k < hc * hc; k++) C[k] = mx[2 * hc + k] * w->scale[2] + w->base[2 * hc + k];
        hc_sinkhorn(C, hc, c->hc_sinkhorn_iters, c->hc_eps);
    }
    work_free(mix);
}

/* Column d of the new streams reads only column d of the old ones, so
 * the streams are updated in place, a chunk of columns at a time (the
 * chunk's old values copied aside, the loops over columns innermost so
 * they vectorise); tokens are independent and split between threads when
 * there are a few. */
void hc_post(const v4c_config *c, float *X, const float *a, const float *post, const float *comb, int n) {
    enum { CHUNK = 64 };
    int hc = c->hc_mult, D = c->hidden_size;
#pragma omp parallel for if (n >= 4 && (size_t)n * hc * D >= 4096)
    for (int t = 0; t < n; t++) {
        float *Xt = X + (size_t)t * hc * D;
        const float *at = a + (size_t)t * D, *C = comb + (size_t)t * hc * hc, *pt = post + (size_t)t * hc;
        float old[16][CHUNK]; /* hc_mult <= 16 (config.c) */
        for (int d0 = 0; d0 < D; d0 += CHUNK) {
            int len = D - d0 < CHUNK ? D - d0 : CHUNK;
            for (int i = 0; i < hc; i++) memcpy(old[i], Xt + (size_t)i * D + d0, (size_t)len * sizeof(float));
            for (int j = 0; j < hc; j++) {
                float *xj = Xt + (size_t)j * D + d0;
                for (int d = 0; d < len; d++) xj[d] = pt[j] * at[d0 + d];
                for (int i = 0; i < hc; i++)
                    for (int d = 0; d < len; d++) xj[d] += C[i * hc + j] * old[i][d];
            }
        }
    }
}

void hc_head(const v4c_config *c, const hc_head_weights *w, const float *X, int n, float *y) {
    int hc = c->hc_mult, D = c->hidden_size;
    float *mix = work_alloc((size_t)n * hc * sizeof(float));
    hc_mix(c, w->fn, hc, X, n, mix);
    for (int t = 0; t < n; t++) {
        const float *Xt = X + (size_t)t * hc * D;
        float *yt = y + (size_t)t * D;
        memset(yt, 0, D * sizeof(float));
        for (int i = 0; i < hc; i++) {
            float wi = sigmoidf(mix[t * hc + i] * w->scale[0] + w->base[i]) + c->hc_eps;
            for (int d = 0; d < D; d++) yt[d] += wi * Xt[i * D + d];
        }
    }
    work_free(mix);
}
