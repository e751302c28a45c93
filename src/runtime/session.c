/* Sessions: one sequence, its position and the per-layer caches
 * (MODEL.md §7); feeding tokens, the MTP block, and rollback. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "model/forward.h"
#include "runtime/session_internal.h"
#include "util/util.h"
#include "util/workmem.h"

v4c_session *v4c_session_new(v4c_model *m, const v4c_session_params *p, char err[V4C_ERR_LEN]) {
    const v4c_config *c = &m->cfg;
    v4c_session_params def = {0};
    if (!p) p = &def;
    if (p->use_mtp && c->n_mtp < 1) {
        v4c_fail(err, "the model has no MTP block (num_nextn_predict_layers = 0)");
        return NULL;
    }
    if (p->max_ctx < 0) {
        v4c_fail(err, "context size %d is negative", p->max_ctx);
        return NULL;
    }
    v4c_session *s = xcalloc(1, sizeof *s);
    s->m = m;
    s->use_mtp = p->use_mtp;
    s->max_ctx = p->max_ctx > 0 ? p->max_ctx : c->max_position_embeddings > 0 ? c->max_position_embeddings : 4096;
    s->tokens = xmalloc((size_t)s->max_ctx * sizeof(int32_t));
    int n = c->n_layers + c->n_mtp;
    s->caches = xcalloc(n, sizeof(layer_cache));
    for (int l = 0; l < n; l++) layer_cache_init(&s->caches[l], c->window, c->head_dim, m->layers[l].ratio, c->index_head_dim);
    s->xhist = xcalloc((size_t)XHIST * c->hc_mult * c->hidden_size, sizeof(float));
    return s;
}

void v4c_session_free(v4c_session *s) {
    if (!s) return;
    int n = s->m->cfg.n_layers + s->m->cfg.n_mtp;
    for (int l = 0; l < n; l++) layer_cache_free(&s->caches[l]);
    free(s->caches);
    free(s->xhist);
    free(s->tokens);
    free(s);
}

static void copy_compressor(compressor_cache *dst, const compressor_cache *src) {
    if (!src->ratio) return;
    size_t rows = (size_t)COMPRESSOR_SLOTS * src->ratio * src->width * sizeof(float);
    memcpy(dst->k, src->k, rows);
    memcpy(dst->s, src->s, rows);
    dst->n_entries = 0;
    for (int j = 0; j < src->n_entries; j++) memcpy(compressor_cache_push(dst), src->entries + (size_t)j * src->dim, src->dim * sizeof(float));
}

v4c_session *v4c_session_clone(const v4c_session *s) {
    const v4c_config *c = &s->m->cfg;
    v4c_session_params p = {.max_ctx = s->max_ctx, .use_mtp = s->use_mtp};
    v4c_session *d = v4c_session_new(s->m, &p, NULL);
    for (int l = 0; l < c->n_layers + c->n_mtp; l++) {
        const layer_cache *a = &s->caches[l];
        layer_cache *b = &d->caches[l];
        memcpy(b->kv_ring, a->kv_ring, (size_t)a->ring * c->head_dim * sizeof(float));
        copy_compressor(&b->comp, &a->comp);
        copy_compressor(&b->icomp, &a->icomp);
    }
    memcpy(d->tokens, s->tokens, (size_t)s->pos * sizeof(int32_t));
    memcpy(d->xhist, s->xhist, (size_t)XHIST * c->hc_mult * c->hidden_size * sizeof(float));
    d->pos = s->pos;
    d->mtp_pos = s->mtp_pos;
    d->has_pending = s->has_pending;
    return d;
}

void v4c_session_reset(v4c_session *s) {
    int n = s->m->cfg.n_layers + s->m->cfg.n_mtp;
    for (int l = 0; l < n; l++) layer_cache_truncate(&s->caches[l], 0);
    s->pos = s->mtp_pos = s->has_pending = 0;
}

int v4c_session_pos(const v4c_session *s) { return s->pos; }

double v4c_session_cache_read_bytes(const v4c_session *s) {
    const v4c_config *c = &s->m->cfg;
    double bytes = 0;
    int t = s->pos; /* the next token's position */
    for (int l = 0; l < c->n_layers; l++) {
        int r = s->m->layers[l].ratio, n = (t + 1) / (r ? r : 1);
        bytes += (double)(t + 1 < c->window ? t + 1 : c->window) * c->head_dim * 4;
        if (r == 4) bytes += (double)(n < c->index_topk ? n : c->index_topk) * c->head_dim * 4 + (double)n * c->index_head_dim * 4;
        else if (r > 0) bytes += (double)n * c->head_dim * 4;
    }
    return bytes;
}

double v4c_session_cache_bytes(const v4c_session *s) {
    const v4c_config *c = &s->m->cfg;
    double bytes = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_cache *lc = &s->caches[l];
        bytes += (double)lc->ring * c->head_dim * 4;
        const compressor_cache *cc[2] = {&lc->comp, &lc->icomp};
        for (int k = 0; k < 2; k++)
            if (cc[k]->ratio) bytes += (2.0 * COMPRESSOR_SLOTS * cc[k]->ratio * cc[k]->width + (double)cc[k]->n_entries * cc[k]->dim) * 4;
    }
    return bytes;
}
int v4c_session_max_ctx(const v4c_session *s) { return s->max_ctx; }
int v4c_session_vocab(const v4c_session *s) { return s->m->cfg.vocab_size; }
int v4c_session_uses_mtp(const v4c_session *s) { return s->use_mtp; }
const int32_t *v4c_session_tokens(const v4c_session *s) { return s->tokens; }

/* head . RMSNorm_norm(hc_head(X)) for n tokens' streams. */
static void head_logits(const v4c_model *m, const hc_head_weights *hw, const float *norm, const float *X, int n, float *logits) {
    const v4c_config *c = &m->cfg;
    int D = c->hidden_size;
    float *y = work_alloc((size_t)n * D * sizeof(float));
    hc_head(c, hw, X, n, y);
    for (int i = 0; i < n; i++) rmsnorm(y + (size_t)i * D, y + (size_t)i * D, norm, D, c->norm_eps);
    linear(logits, &m->head, y, n);
    work_free(y);
}

/* MTP block 0 over n positions starting at s->mtp_pos (MODEL.md §6):
 * X [n, hc, D] holds the main model's final streams (overwritten), next[n]
 * the tokens that follow them. logits: the last position's, or NULL. */
static void mtp_forward(v4c_session *s, float *X, const int32_t *next, int n, float *logits) {
    const v4c_model *m = s->m;
    const v4c_config *c = &m->cfg;
    int hc = c->hc_mult, D = c->hidden_size, L = c->n_layers;
    const layer_weights *w = &m->layers[L];
    float *e = work_alloc((size_t)n * D * sizeof(float)), *ep = work_alloc((size_t)n * D * sizeof(float));
    float *hp = work_alloc((size_t)n * hc * D * sizeof(float));
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
    batch_seq seq = {s->caches, s->mtp_pos, 0, n};
    batch b;
    batch_init(&b, &seq, 1);
    block_forward(m, w, &b, X, next);
    batch_free(&b);
    s->mtp_pos += n;
    if (logits) head_logits(m, &w->hc_head, w->norm, X + (size_t)(n - 1) * hc * D, 1, logits);
    work_free(hp);
    work_free(ep);
    work_free(e);
}

/* The main model over counts[k] tokens of each session ss[k] (ids
 * concatenated); X [sum counts, hc, D] receives the final streams. */
static int main_forward(v4c_session **ss, const int32_t *ids, const int *counts, int n_seq, float **X_out, char *err) {
    const v4c_model *m = ss[0]->m;
    const v4c_config *c = &m->cfg;
    int hc = c->hc_mult, D = c->hidden_size, n = 0;
    for (int k = 0; k < n_seq; k++) {
        v4c_session *s = ss[k];
        if (s->m != m) return v4c_fail(err, "batched sessions must share one model");
        for (int j = 0; j < k; j++)
            if (ss[j] == s) return v4c_fail(err, "session %d appears twice in one batch", k);
        if (counts[k] < 1) return v4c_fail(err, "no tokens to feed");
        for (int i = 0; i < counts[k]; i++)
            if (ids[n + i] < 0 || ids[n + i] >= c->vocab_size)
                return v4c_fail(err, "token id %d at index %d is outside the vocabulary [0, %d)", ids[n + i], n + i, c->vocab_size);
        if (s->pos + counts[k] > s->max_ctx)
            return v4c_fail(err, "%d tokens after %d exceed the context of %d tokens", counts[k], s->pos, s->max_ctx);
        n += counts[k];
    }
    size_t row = (size_t)hc * D;
    float *X = work_alloc((size_t)n * row * sizeof(float));
    for (int i = 0; i < n; i++) {
        embed_row(m, ids[i], X + i * row);
        for (int j = 1; j < hc; j++) memcpy(X + i * row + (size_t)j * D, X + i * row, D * sizeof(float));
    }
    batch_seq *seqs = xmalloc((size_t)n_seq * sizeof(batch_seq));
    for (int k = 0, start = 0; k < n_seq; start += counts[k++]) seqs[k] = (batch_seq){ss[k]->caches, ss[k]->pos, start, counts[k]};
    batch b;
    batch_init(&b, seqs, n_seq);
    for (int l = 0; l < c->n_layers; l++) block_forward(m, &m->layers[l], &b, X, ids);
    batch_free(&b);
    free(seqs);
    *X_out = X;
    return 0;
}

/* Bookkeeping after the main model consumed n tokens of s: the MTP block
 * catches up, the stream history, token ids and position advance. */
static void advance(v4c_session *s, const float *X, const int32_t *ids, int n) {
    const v4c_config *c = &s->m->cfg;
    size_t row = (size_t)c->hc_mult * c->hidden_size;
    if (s->use_mtp) {
        /* Positions mtp_pos .. pos+n-2 can run now; pos+n-1 waits for its
         * next token. */
        int k = s->pos + n - 1 - s->mtp_pos;
        if (k > 0) {
            float *Xm = work_alloc((size_t)k * row * sizeof(float));
            int32_t *next = xmalloc((size_t)k * sizeof(int32_t));
            for (int i = 0; i < k; i++) {
                int p = s->mtp_pos + i; /* >= pos - 1 */
                memcpy(Xm + i * row, p < s->pos ? session_xrow(s, p) : X + (size_t)(p - s->pos) * row, row * sizeof(float));
                next[i] = ids[p + 1 - s->pos];
            }
            mtp_forward(s, Xm, next, k, NULL);
            free(next);
            work_free(Xm);
        }
        s->has_pending = 1;
    }
    /* After the MTP step above, which may still read the previous rows. */
    int first = n > XHIST ? n - XHIST : 0;
    for (int i = first; i < n; i++) memcpy(session_xrow(s, s->pos + i), X + i * row, row * sizeof(float));
    memcpy(s->tokens + s->pos, ids, (size_t)n * sizeof(int32_t));
    s->pos += n;
}

/* Feed n tokens; logits for the last n_logits positions (0 = none). */
static int feed(v4c_session *s, const int32_t *ids, int n, float *logits, int n_logits, char *err) {
    const v4c_model *m = s->m;
    size_t row = (size_t)m->cfg.hc_mult * m->cfg.hidden_size;
    float *X;
    if (main_forward(&s, ids, &n, 1, &X, err)) return -1;
    if (n_logits > 0) head_logits(m, &m->hc_head, m->norm, X + (size_t)(n - n_logits) * row, n_logits, logits);
    advance(s, X, ids, n);
    work_free(X);
    return 0;
}

int v4c_batch_feed(v4c_session **ss, const int32_t *ids, const int *counts, int n_seq, float *logits, char err[V4C_ERR_LEN]) {
    if (n_seq < 1) return v4c_fail(err, "empty batch");
    const v4c_model *m = ss[0]->m;
    size_t row = (size_t)m->cfg.hc_mult * m->cfg.hidden_size;
    float *X;
    if (main_forward(ss, ids, counts, n_seq, &X, err)) return -1;
    if (logits) { /* the last row of each sequence, through the head together */
        float *last = work_alloc((size_t)n_seq * row * sizeof(float));
        for (int k = 0, end = 0; k < n_seq; k++) {
            end += counts[k];
            memcpy(last + (size_t)k * row, X + (size_t)(end - 1) * row, row * sizeof(float));
        }
        head_logits(m, &m->hc_head, m->norm, last, n_seq, logits);
        work_free(last);
    }
    for (int k = 0, start = 0; k < n_seq; start += counts[k++]) advance(ss[k], X + (size_t)start * row, ids + start, counts[k]);
    work_free(X);
    return 0;
}

int v4c_session_feed(v4c_session *s, const int32_t *ids, int n, float *logits, char err[V4C_ERR_LEN]) {
    return feed(s, ids, n, logits, logits ? 1 : 0, err);
}

int v4c_session_feed_all(v4c_session *s, const int32_t *ids, int n, float *logits, char err[V4C_ERR_LEN]) {
    return feed(s, ids, n, logits, n, err);
}

int v4c_session_mtp(v4c_session *s, int32_t next_id, float *logits, char err[V4C_ERR_LEN]) {
    const v4c_config *c = &s->m->cfg;
    if (!s->use_mtp) return v4c_fail(err, "session was created without use_mtp");
    if (!s->has_pending) return v4c_fail(err, "MTP needs a fed position that it has not run yet");
    if (next_id < 0 || next_id >= c->vocab_size) return v4c_fail(err, "token id %d is outside the vocabulary [0, %d)", next_id, c->vocab_size);
    size_t row = (size_t)c->hc_mult * c->hidden_size;
    float *X = work_alloc(row * sizeof(float));
    memcpy(X, session_xrow(s, s->pos - 1), row * sizeof(float));
    mtp_forward(s, X, &next_id, 1, logits);
    work_free(X);
    s->has_pending = 0;
    return 0;
}

int v4c_session_rollback(v4c_session *s, int n, char err[V4C_ERR_LEN]) {
    const v4c_config *c = &s->m->cfg;
    if (n < 0 || n > V4C_MAX_ROLLBACK || n > s->pos)
        return v4c_fail(err, "cannot roll back %d tokens (at most %d, and %d were fed)", n, V4C_MAX_ROLLBACK, s->pos);
    int q = s->pos - n;
    for (int l = 0; l < c->n_layers; l++) layer_cache_truncate(&s->caches[l], q);
    s->pos = q;
    if (s->use_mtp) {
        /* Position q-1's next token may change: its MTP step is redone. */
        int keep = q > 0 ? q - 1 : 0;
        if (s->mtp_pos > keep) s->mtp_pos = keep;
        for (int l = c->n_layers; l < c->n_layers + c->n_mtp; l++) layer_cache_truncate(&s->caches[l], s->mtp_pos);
        s->has_pending = q > 0;
    }
    return 0;
}

void v4c_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

int v4c_get_threads(void) { return omp_get_max_threads(); }
