/* Lightning indexer, MODEL.md §4: scores every compressed entry with a
 * small FP4-simulated multi-head dot product and keeps the top-k for CSA. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"
#include "util/workmem.h"

/* Token i's scores over its visible compressed entries, and their top-k. */
static void score_token(const batch *b, int layer, int i, int nI, int dI, int topk, const float *qI, const float *wts, float *dots, float *score,
                        int *sel, int *n_sel) {
    const compressor_cache *cc = &b->seqs[b->seq_of[i]].caches[layer].icomp;
    int count = (b->pos[i] + 1) / 4;
    n_sel[i] = count < topk ? count : topk;
    if (count == 0) return;
    v4c_matrix E = {.kind = WK_F32, .op = OP_OTHER, .rows = count, .cols = dI, .data = cc->entries};
    matmul(dots, count, &E, 0, count, qI + (size_t)i * nI * dI, dI, nI);
    for (int j = 0; j < count; j++) {
        float s = 0;
        for (int h = 0; h < nI; h++) {
            float d = dots[(size_t)h * count + j];
            s += wts[i * nI + h] * (d > 0 ? d : 0);
        }
        score[j] = s;
    }
    topk_indices(score, count, n_sel[i], sel + (size_t)i * topk);
}

void indexer_select(const v4c_model *m, const layer_weights *w, const batch *b, const float *x, const float *q_lat, int *sel, int *n_sel) {
    const v4c_config *c = &m->cfg;
    const indexer_weights *ix = &w->indexer;
    int nI = c->index_n_heads, dI = c->index_head_dim, R = c->rope_dim, topk = c->index_topk, n = b->n;

    float *qI = work_alloc((size_t)n * nI * dI * sizeof(float));
    float *wts = work_alloc((size_t)n * nI * sizeof(float));
    matmul_job q_w[2] = {{qI, 0, &ix->wq_b, 0, 0, q_lat, 0, n, 1}, {wts, 0, &ix->weights_proj, 0, 0, x, 0, n, 1}}; /* one region for a few tokens */
    matmul_many(q_w, 2);
    float qscale = 1.0f / sqrtf((float)dI), wscale = 1.0f / sqrtf((float)dI) / sqrtf((float)nI);
#pragma omp parallel for if (n >= 4)
    for (int i = 0; i < n; i++) {
        float cs[ROPE_MAX];
        rope_table(cs, R, w->rope_freqs, b->pos[i]); /* once for all heads */
        for (int h = 0; h < nI; h++) {
            float *qh = qI + ((size_t)i * nI + h) * dI;
            rope_rotate(qh + dI - R, R, cs, 0);
            hadamard(qh, dI);
            for (int d = 0; d < dI; d++) qh[d] *= qscale;
            fp4_quant(qh, dI, 32);
        }
        for (int h = 0; h < nI; h++) wts[i * nI + h] *= wscale;
    }
    int max_entries = 1;
    compressor_forward(c, &ix->comp, b, w->index, x, w->rope_freqs, 1);
    for (int k = 0; k < b->n_seq; k++) {
        const compressor_cache *cc = &b->seqs[k].caches[w->index].icomp;
        if (cc->n_entries > max_entries) max_entries = cc->n_entries;
    }

    /* I(t, j) = sum_h w_h relu(qI_h . cI_j): the dot products as one matmul
     * per token against its visible entries (rows of an F32 matrix). The
     * tokens of a batch are split between threads, each product running on
     * its thread alone (a parallel region per token cost more than its
     * work: the indexer took 5x its one-token time at a batch of 8). One
     * token stays outside any OpenMP construct, so that its product may
     * split between the threads: inside a region, even an inactive one,
     * products run on the calling thread (matrix.c, may_fork). */
    if (n == 1) {
        float *dots = work_alloc((size_t)nI * max_entries * sizeof(float)), *score = work_alloc((size_t)max_entries * sizeof(float));
        score_token(b, w->index, 0, nI, dI, topk, qI, wts, dots, score, sel, n_sel);
        work_free(dots);
        work_free(score);
    } else {
#pragma omp parallel
        {
            float *dots = work_alloc((size_t)nI * max_entries * sizeof(float)), *score = work_alloc((size_t)max_entries * sizeof(float));
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < n; i++) score_token(b, w->index, i, nI, dI, topk, qI, wts, dots, score, sel, n_sel);
            work_free(dots);
            work_free(score);
        }
    }
    work_free(qI);
    work_free(wts);
}
