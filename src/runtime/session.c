/* Sessions: one sequence, its position and the per-layer caches. The MTP
 * block trails the main model by one position, because its input at
 * position t needs token t+1 (MODEL.md §6). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "model/forward.h"
#include "util/util.h"

struct v4c_session {
    v4c_model *m;
    int max_ctx, pos, use_mtp;
    layer_cache *caches; /* n_layers + n_mtp */
    float *pending;      /* [hc, D] final main stream at pos-1, not yet given to MTP */
    int has_pending, mtp_pos;
};

v4c_session *v4c_session_new(v4c_model *m, const v4c_session_params *p, char err[V4C_ERR_LEN]) {
    const v4c_config *c = &m->cfg;
    v4c_session_params def = {0};
    if (!p) p = &def;
    if (p->use_mtp && c->n_mtp < 1) {
        v4c_fail(err, "the model has no MTP block (num_nextn_predict_layers = 0)");
        return NULL;
    }
    v4c_session *s = xcalloc(1, sizeof *s);
    s->m = m;
    s->use_mtp = p->use_mtp;
    s->max_ctx = p->max_ctx > 0 ? p->max_ctx : c->max_position_embeddings > 0 ? c->max_position_embeddings : 4096;
    int n = c->n_layers + c->n_mtp;
    s->caches = xcalloc(n, sizeof(layer_cache));
    for (int l = 0; l < n; l++) {
        layer_cache *lc = &s->caches[l];
        const layer_weights *w = &m->layers[l];
        lc->kv_ring = xcalloc((size_t)c->window * c->head_dim, sizeof(float));
        if (w->ratio > 0) compressor_cache_init(&lc->comp, w->ratio, c->head_dim, w->comp.overlap * c->head_dim);
        if (w->ratio == 4) compressor_cache_init(&lc->icomp, 4, c->index_head_dim, 2 * c->index_head_dim);
    }
    s->pending = xmalloc((size_t)c->hc_mult * c->hidden_size * sizeof(float));
    return s;
}

void v4c_session_free(v4c_session *s) {
    if (!s) return;
    int n = s->m->cfg.n_layers + s->m->cfg.n_mtp;
    for (int l = 0; l < n; l++) {
        free(s->caches[l].kv_ring);
        compressor_cache_free(&s->caches[l].comp);
        compressor_cache_free(&s->caches[l].icomp);
    }
    free(s->caches);
    free(s->pending);
    free(s);
}

int v4c_session_pos(const v4c_session *s) { return s->pos; }

/* head . RMSNorm_norm(hc_head(X)) for one token's streams. */
static void final_logits(const v4c_model *m, const hc_head_weights *hw, const float *norm, const float *X, float *logits) {
    const v4c_config *c = &m->cfg;
    float *y = xmalloc((size_t)c->hidden_size * sizeof(float));
    hc_head(c, hw, X, 1, y);
    rmsnorm(y, y, norm, c->hidden_size, c->norm_eps);
    linear(logits, &m->head, y, 1);
    free(y);
}

/* MTP block 0 over n positions starting at s->mtp_pos: X [n, hc, D] holds
 * the main model's final streams, next[n] the tokens that follow them. */
static void mtp_forward(v4c_session *s, float *X, const int32_t *next, int n, float *logits) {
    const v4c_model *m = s->m;
    const v4c_config *c = &m->cfg;
    int hc = c->hc_mult, D = c->hidden_size, L = c->n_layers;
    const layer_weights *w = &m->layers[L];
    float *e = xmalloc((size_t)n * D * sizeof(float)), *ep = xmalloc((size_t)n * D * sizeof(float));
    float *hp = xmalloc((size_t)n * hc * D * sizeof(float));
    for (int i = 0; i < n; i++) {
        embed_row(m, next[i], e + (size_t)i * D);
        rmsnorm(e + (size_t)i * D, e + (size_t)i * D, w->enorm, D, c->norm_eps);
    }
    linear(ep, &w->e_proj, e, n);
    for (int r = 0; r < n * hc; r++) rmsnorm(X + (size_t)r * D, X + (size_t)r * D, w->hnorm, D, c->norm_eps);
    linear(hp, &w->h_proj, X, n * hc);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < hc; j++)
            for (int d = 0; d < D; d++) X[((size_t)i * hc + j) * D + d] = ep[(size_t)i * D + d] + hp[((size_t)i * hc + j) * D + d];
    block_forward(m, w, &s->caches[L], X, next, n, s->mtp_pos);
    s->mtp_pos += n;
    if (logits) final_logits(m, &w->hc_head, w->norm, X + (size_t)(n - 1) * hc * D, logits);
    free(hp);
    free(ep);
    free(e);
}

int v4c_session_feed(v4c_session *s, const int32_t *ids, int n, float *logits, char err[V4C_ERR_LEN]) {
    const v4c_model *m = s->m;
    const v4c_config *c = &m->cfg;
    int hc = c->hc_mult, D = c->hidden_size;
    if (n < 1) return v4c_fail(err, "no tokens to feed");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size) return v4c_fail(err, "token id %d at index %d is outside the vocabulary [0, %d)", ids[i], i, c->vocab_size);
    if (s->pos + n > s->max_ctx)
        return v4c_fail(err, "%d tokens after %d exceed the context of %d tokens", n, s->pos, s->max_ctx);

    size_t row = (size_t)hc * D;
    float *X = xmalloc((size_t)n * row * sizeof(float));
    for (int i = 0; i < n; i++) {
        embed_row(m, ids[i], X + i * row);
        for (int j = 1; j < hc; j++) memcpy(X + i * row + (size_t)j * D, X + i * row, D * sizeof(float));
    }
    for (int l = 0; l < c->n_layers; l++) block_forward(m, &m->layers[l], &s->caches[l], X, ids, n, s->pos);
    if (logits) final_logits(m, &m->hc_head, m->norm, X + (size_t)(n - 1) * row, logits);

    if (s->use_mtp) {
        /* Positions pos-1 (if pending) .. pos+n-2 can run now; pos+n-1 waits. */
        int k = s->has_pending + n - 1;
        if (k > 0) {
            float *Xm = xmalloc((size_t)k * row * sizeof(float));
            int32_t *next = xmalloc((size_t)k * sizeof(int32_t));
            int o = 0;
            if (s->has_pending) {
                memcpy(Xm, s->pending, row * sizeof(float));
                next[o++] = ids[0];
            }
            memcpy(Xm + (size_t)o * row, X, (size_t)(n - 1) * row * sizeof(float));
            memcpy(next + o, ids + 1, (size_t)(n - 1) * sizeof(int32_t));
            mtp_forward(s, Xm, next, k, NULL);
            free(next);
            free(Xm);
        }
        memcpy(s->pending, X + (size_t)(n - 1) * row, row * sizeof(float));
        s->has_pending = 1;
    }
    s->pos += n;
    free(X);
    return 0;
}

int v4c_session_mtp(v4c_session *s, int32_t next_id, float *logits, char err[V4C_ERR_LEN]) {
    const v4c_config *c = &s->m->cfg;
    if (!s->use_mtp) return v4c_fail(err, "session was created without use_mtp");
    if (!s->has_pending) return v4c_fail(err, "MTP needs a fed position that it has not run yet");
    if (next_id < 0 || next_id >= c->vocab_size) return v4c_fail(err, "token id %d is outside the vocabulary [0, %d)", next_id, c->vocab_size);
    mtp_forward(s, s->pending, &next_id, 1, logits);
    s->has_pending = 0;
    return 0;
}

void v4c_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

int v4c_get_threads(void) { return omp_get_max_threads(); }
