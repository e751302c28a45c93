/* KV compressors, MODEL.md §4 "Compressor": pool every m tokens' k_t with an
 * element-wise softmax over s_t into one entry. The overlapping variant
 * (m = 4, CSA) also pools the previous block's first halves. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"
#include "util/workmem.h"

void compressor_cache_init(compressor_cache *c, int ratio, int dim, int width) {
    memset(c, 0, sizeof *c);
    c->ratio = ratio;
    c->dim = dim;
    c->width = width;
    c->k = xcalloc((size_t)COMPRESSOR_SLOTS * ratio * width, sizeof(float));
    c->s = xcalloc((size_t)COMPRESSOR_SLOTS * ratio * width, sizeof(float));
}

void compressor_cache_free(compressor_cache *c) {
    free(c->k);
    free(c->s);
    free(c->entries);
    memset(c, 0, sizeof *c);
}

float *compressor_cache_push(compressor_cache *c) {
    if (c->n_entries == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->entries = xrealloc(c->entries, (size_t)c->cap * c->dim * sizeof(float));
    }
    return c->entries + (size_t)c->n_entries++ * c->dim;
}

void layer_cache_init(layer_cache *lc, int window, int head_dim, int ratio, int index_dim) {
    memset(lc, 0, sizeof *lc);
    lc->ring = window + CACHE_SPARE;
    lc->kv_ring = xcalloc((size_t)lc->ring * head_dim, sizeof(float));
    if (ratio > 0) compressor_cache_init(&lc->comp, ratio, head_dim, (ratio == 4 ? 2 : 1) * head_dim);
    if (ratio == 4) compressor_cache_init(&lc->icomp, 4, index_dim, 2 * index_dim);
}

void layer_cache_free(layer_cache *lc) {
    free(lc->kv_ring);
    compressor_cache_free(&lc->comp);
    compressor_cache_free(&lc->icomp);
}

/* Entry j exists once position jm+m-1 was seen; the block rows of
 * positions < pos are untouched by later ones (see COMPRESSOR_SLOTS), and
 * ring slots of the window before pos likewise (CACHE_SPARE). */
void layer_cache_truncate(layer_cache *lc, int pos) {
    if (lc->comp.ratio) lc->comp.n_entries = pos / lc->comp.ratio;
    if (lc->icomp.ratio) lc->icomp.n_entries = pos / lc->icomp.ratio;
}

/* Pool block b (its last position just arrived) into out[d]. */
static void pool_block(const compressor_cache *cc, int b, int overlap, float *out) {
    int m = cc->ratio, d = cc->dim, W = cc->width;
    size_t cur = (size_t)(b % COMPRESSOR_SLOTS) * m * W, prev = (size_t)((b + COMPRESSOR_SLOTS - 1) % COMPRESSOR_SLOTS) * m * W;
    const float *kc = cc->k + cur, *sc = cc->s + cur, *kp = cc->k + prev, *sp = cc->s + prev;
    /* Overlapping: features [d, 2d) of this block and [0, d) of block b-1. */
    int cur_off = overlap ? d : 0, with_prev = overlap && b > 0;
    for (int f = 0; f < d; f++) {
        float mx = -INFINITY;
        for (int i = 0; i < m; i++) mx = fmaxf(mx, sc[i * W + cur_off + f]);
        if (with_prev)
            for (int i = 0; i < m; i++) mx = fmaxf(mx, sp[i * W + f]);
        float num = 0, den = 0;
        if (with_prev)
            for (int i = 0; i < m; i++) {
                float e = expf(sp[i * W + f] - mx);
                den += e;
                num += e * kp[i * W + f];
            }
        for (int i = 0; i < m; i++) {
            float e = expf(sc[i * W + cur_off + f] - mx);
            den += e;
            num += e * kc[i * W + cur_off + f];
        }
        out[f] = num / den;
    }
}

/* One sequence's n rows of k_t (K) and s_t (S) into its cache cc. */
static void compressor_consume(const v4c_config *c, const compressor_weights *w, compressor_cache *cc, const float *K, const float *S, int n,
                               int pos0, const float *rope_freqs, int for_indexer) {
    int m = w->ratio, d = w->dim, W = w->overlap * d, R = c->rope_dim;
    for (int i = 0; i < n; i++) {
        int t = pos0 + i, b = t / m, slot = t % m;
        size_t row = ((size_t)(b % COMPRESSOR_SLOTS) * m + slot) * W;
        float *kdst = cc->k + row, *sdst = cc->s + row;
        const float *ape = w->ape + (size_t)slot * W;
        for (int f = 0; f < W; f++) {
            kdst[f] = K[(size_t)i * W + f];
            sdst[f] = S[(size_t)i * W + f] + ape[f];
        }
        if (slot != m - 1) continue;
        float *e = compressor_cache_push(cc);
        pool_block(cc, b, w->overlap == 2, e);
        rmsnorm(e, e, w->norm, d, c->norm_eps);
        rope(e + d - R, R, rope_freqs, b * m, 0);
        if (for_indexer) {
            hadamard(e, d);
            float sc = 1.0f / sqrtf((float)d);
            for (int f = 0; f < d; f++) e[f] *= sc;
            fp4_quant(e, d, 32);
        } else {
            fp8_quant(e, d - R, 64);
        }
    }
}

void compressor_forward(const v4c_config *c, const compressor_weights *w, const batch *b, int layer, const float *x, const float *rope_freqs,
                        int for_indexer) {
    int W = w->overlap * w->dim;
    float *K = work_alloc((size_t)b->n * W * sizeof(float)), *S = work_alloc((size_t)b->n * W * sizeof(float));
    /* One product for the whole batch: each sequence apart read the
     * weights once per sequence (a server's step of 8). */
    matmul_job kv_gate[2] = {{K, 0, &w->wkv, 0, 0, x, 0, b->n, 1}, {S, 0, &w->wgate, 0, 0, x, 0, b->n, 1}}; /* one region for a few tokens */
    matmul_many(kv_gate, 2);
#pragma omp parallel for schedule(dynamic, 1) if (b->n_seq >= 2) /* each sequence its own cache */
    for (int k = 0; k < b->n_seq; k++) {
        const batch_seq *sq = &b->seqs[k];
        compressor_cache *cc = for_indexer ? &sq->caches[layer].icomp : &sq->caches[layer].comp;
        compressor_consume(c, w, cc, K + (size_t)sq->start * W, S + (size_t)sq->start * W, sq->n, sq->pos0, rope_freqs, for_indexer);
    }
    work_free(K);
    work_free(S);
}
