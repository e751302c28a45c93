/* Hybrid attention, MODEL.md §4: one shared kv head (MQA) over the sliding
 * window plus compressed entries (all of them for HCA, the indexer's top-k
 * for CSA), with an attention sink and the grouped output projection. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/attend.h"
#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"
#include "util/workmem.h"

void attention_forward(const v4c_model *m, const layer_weights *w, const batch *b, const float *x, float *out) {
    const v4c_config *c = &m->cfg;
    int H = c->n_heads, Dh = c->head_dim, R = c->rope_dim, qr = c->q_lora_rank, win = c->window, ratio = w->ratio, n = b->n;
    float eps = c->norm_eps;

    float *q_lat = work_alloc((size_t)n * qr * sizeof(float));
    float *q = work_alloc((size_t)n * H * Dh * sizeof(float));
    float *kv = work_alloc((size_t)n * Dh * sizeof(float));
    matmul_job qkv[2] = {{q_lat, 0, &w->wq_a, 0, 0, x, 0, n, 1}, {kv, 0, &w->wkv, 0, 0, x, 0, n, 1}}; /* one region for a few tokens */
    matmul_many(qkv, 2);
    for (int i = 0; i < n; i++) rmsnorm(q_lat + (size_t)i * qr, q_lat + (size_t)i * qr, w->q_norm, qr, eps);
    linear(q, &w->wq_b, q_lat, n);
#pragma omp parallel for if (n >= 4)
    for (int i = 0; i < n; i++) {
        float cs[ROPE_MAX];
        rope_table(cs, R, w->rope_freqs, b->pos[i]); /* once for all heads */
        rmsnorm_rows(q + (size_t)i * H * Dh, H, Dh, eps);
        for (int h = 0; h < H; h++) rope_rotate(q + ((size_t)i * H + h) * Dh + Dh - R, R, cs, 0);
        float *k = kv + (size_t)i * Dh;
        rmsnorm(k, k, w->kv_norm, Dh, eps);
        rope_rotate(k + Dh - R, R, cs, 0);
        fp8_quant(k, Dh - R, 64);
    }

    int topk = 0, *sel = NULL, *n_sel = NULL, max_keys = win;
    if (ratio > 0) compressor_forward(c, &w->comp, b, w->index, x, w->rope_freqs, 0);
    for (int k = 0; ratio > 0 && k < b->n_seq; k++) {
        const compressor_cache *cc = &b->seqs[k].caches[w->index].comp;
        if (win + cc->n_entries > max_keys) max_keys = win + cc->n_entries;
    }
    if (ratio == 4) {
        topk = c->index_topk;
        sel = work_alloc((size_t)n * topk * sizeof(int));
        n_sel = work_alloc((size_t)n * sizeof(int));
        indexer_select(m, w, b, x, q_lat, sel, n_sel);
    }

    /* Work items: one token's block of HEAD_BLOCK heads, which share its keys. */
    enum { HEAD_BLOCK = 16 };
    int hblocks = (H + HEAD_BLOCK - 1) / HEAD_BLOCK;
    float *o = work_alloc((size_t)n * H * Dh * sizeof(float));
#pragma omp parallel if (n * hblocks > 1)
    {
        const float **keys = work_alloc((size_t)max_keys * sizeof(float *));
        float *scores = work_alloc((size_t)HEAD_BLOCK * max_keys * sizeof(float));
#pragma omp for schedule(dynamic)
        for (int ib = 0; ib < n * hblocks; ib++) {
            int i = ib / hblocks, h0 = ib % hblocks * HEAD_BLOCK, nh = H - h0 < HEAD_BLOCK ? H - h0 : HEAD_BLOCK;
            int t = b->pos[i], nk = 0;
            const batch_seq *sq = &b->seqs[b->seq_of[i]];
            const layer_cache *lc = &sq->caches[w->index];
            const float *own_kv = kv + (size_t)sq->start * Dh; /* this sequence's rows */
            for (int p = t - win + 1 < 0 ? 0 : t - win + 1; p <= t; p++)
                keys[nk++] = p >= sq->pos0 ? own_kv + (size_t)(p - sq->pos0) * Dh : lc->kv_ring + (size_t)(p % lc->ring) * Dh;
            if (ratio == 4) {
                for (int k = 0; k < n_sel[i]; k++) keys[nk++] = lc->comp.entries + (size_t)sel[i * topk + k] * Dh;
            } else if (ratio > 0) {
                for (int j = 0; j < (t + 1) / ratio; j++) keys[nk++] = lc->comp.entries + (size_t)j * Dh;
            }
            float *oh = o + ((size_t)i * H + h0) * Dh;
            attend_heads(q + ((size_t)i * H + h0) * Dh, nh, keys, nk, Dh, w->attn_sink + h0, scores, oh);
            float cs[ROPE_MAX];
            rope_table(cs, R, w->rope_freqs, t);
            for (int h = 0; h < nh; h++) rope_rotate(oh + (size_t)h * Dh + Dh - R, R, cs, 1);
        }
        work_free(keys);
        work_free(scores);
    }

    for (int k = 0; k < b->n_seq; k++) {
        const batch_seq *sq = &b->seqs[k];
        layer_cache *lc = &sq->caches[w->index];
        int first = sq->n > lc->ring ? sq->n - lc->ring : 0;
        for (int i = first; i < sq->n; i++)
            memcpy(lc->kv_ring + (size_t)((sq->pos0 + i) % lc->ring) * Dh, kv + (size_t)(sq->start + i) * Dh, Dh * sizeof(float));
    }

    /* Grouped output projection: group g's slice of o through its own
     * block of wo_a (dequantized only: no activation quantization), then wo_b. */
    int G = c->o_groups, olr = c->o_lora_rank, gw = H * Dh / G;
    float *u = work_alloc((size_t)n * G * olr * sizeof(float));
    matmul_job groups[G];
    for (int g = 0; g < G; g++) groups[g] = (matmul_job){u + (size_t)g * olr, G * olr, &w->wo_a, g * olr, olr, o + (size_t)g * gw, H * Dh, n, 0};
    matmul_many(groups, G);
    linear(out, &w->wo_b, u, n);

    work_free(u);
    work_free(o);
    work_free(sel);
    work_free(n_sel);
    work_free(kv);
    work_free(q);
    work_free(q_lat);
}
