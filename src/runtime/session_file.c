/* Saved sessions: the on-disk KV cache. Layout (little-endian):
 *   "V4CSESS1" | u32 version | u64 model fingerprint | i32 pos, mtp_pos,
 *   has_pending, use_mtp | i32 tokens[pos] | per layer: kv ring, then for
 *   each compressor its block rows (k, s) and entries | MTP stream history
 *   | u64 FNV-1a checksum of everything before it.
 * Every size follows from the model's config, so the loader checks the
 * exact length before trusting any count. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/session_internal.h"
#include "util/util.h"

#define SESSION_MAGIC "V4CSESS1"
#define SESSION_VERSION 1u

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static uint64_t checksum(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static size_t block_rows_bytes(const compressor_cache *cc) {
    return (size_t)COMPRESSOR_SLOTS * cc->ratio * cc->width * sizeof(float);
}

static void put_compressor(buf *b, const compressor_cache *cc) {
    if (!cc->ratio) return;
    put(b, cc->k, block_rows_bytes(cc));
    put(b, cc->s, block_rows_bytes(cc));
    put(b, cc->entries, (size_t)cc->n_entries * cc->dim * sizeof(float));
}

int v4c_session_save(const v4c_session *s, const char *path, char err[V4C_ERR_LEN]) {
    const v4c_config *c = &s->m->cfg;
    buf b = {0};
    uint32_t version = SESSION_VERSION;
    uint64_t fp = v4c_model_fingerprint(s->m);
    int32_t head[4] = {s->pos, s->mtp_pos, s->has_pending, s->use_mtp};
    put(&b, SESSION_MAGIC, 8);
    put(&b, &version, 4);
    put(&b, &fp, 8);
    put(&b, head, sizeof head);
    put(&b, s->tokens, (size_t)s->pos * sizeof(int32_t));
    int layers = c->n_layers + (s->use_mtp ? c->n_mtp : 0);
    for (int l = 0; l < layers; l++) {
        const layer_cache *lc = &s->caches[l];
        put(&b, lc->kv_ring, (size_t)lc->ring * c->head_dim * sizeof(float));
        put_compressor(&b, &lc->comp);
        put_compressor(&b, &lc->icomp);
    }
    put(&b, s->xhist, (size_t)XHIST * c->hc_mult * c->hidden_size * sizeof(float));
    uint64_t sum = checksum(b.p, b.n);
    put(&b, &sum, 8);

    /* Write to a temporary name and rename, so a crash never leaves half a file. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int rc = 0;
    if (!f) rc = v4c_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    else {
        int ok = fwrite(b.p, 1, b.n, f) == b.n;
        if (fclose(f) != 0) ok = 0;
        if (!ok) rc = v4c_fail(err, "%s: write failed", tmp);
        else if (rename(tmp, path) != 0) rc = v4c_fail(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        if (rc) remove(tmp);
    }
    free(b.p);
    return rc;
}

typedef struct {
    const uint8_t *p;
    size_t n, off;
} reader;

static void get(reader *r, void *dst, size_t n) { /* bounds checked by the caller's size check */
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}

static void get_compressor(reader *r, compressor_cache *cc, int pos) {
    if (!cc->ratio) return;
    get(r, cc->k, block_rows_bytes(cc));
    get(r, cc->s, block_rows_bytes(cc));
    cc->n_entries = 0;
    for (int j = 0; j < pos / cc->ratio; j++) get(r, compressor_cache_push(cc), (size_t)cc->dim * sizeof(float));
}

static size_t compressor_bytes(const compressor_cache *cc, int pos) {
    return cc->ratio ? 2 * block_rows_bytes(cc) + (size_t)(pos / cc->ratio) * cc->dim * sizeof(float) : 0;
}

v4c_session *v4c_session_load(v4c_model *m, const char *path, const v4c_session_params *p, char err[V4C_ERR_LEN]) {
    const v4c_config *c = &m->cfg;
    size_t n;
    char *data = read_file(path, &n, err);
    if (!data) return NULL;
    const uint8_t *d = (const uint8_t *)data;
    v4c_session *s = NULL;
    size_t fixed = 8 + 4 + 8 + 16;
    uint32_t version;
    uint64_t fp, sum;
    int32_t head[4];
    if (n < fixed + 8 || memcmp(d, SESSION_MAGIC, 8)) {
        v4c_fail(err, "%s: not a v4c session file%s", path, n < fixed + 8 ? " (too short)" : " (bad magic)");
        goto out;
    }
    memcpy(&version, d + 8, 4);
    memcpy(&fp, d + 12, 8);
    memcpy(head, d + 20, 16);
    if (version != SESSION_VERSION) {
        v4c_fail(err, "%s: session format version %u, this v4c reads version %u", path, version, SESSION_VERSION);
        goto out;
    }
    if (fp != v4c_model_fingerprint(m)) {
        v4c_fail(err, "%s: saved with a different model (fingerprint %016llx, this model %016llx)", path, (unsigned long long)fp,
                 (unsigned long long)v4c_model_fingerprint(m));
        goto out;
    }
    memcpy(&sum, d + n - 8, 8);
    if (checksum(d, n - 8) != sum) {
        v4c_fail(err, "%s: corrupt or truncated session file (checksum mismatch)", path);
        goto out;
    }
    int pos = head[0], mtp_pos = head[1], has_pending = head[2], saved_mtp = head[3];
    v4c_session_params sp = p ? *p : (v4c_session_params){0};
    if (sp.use_mtp && !saved_mtp) {
        v4c_fail(err, "%s: saved without the MTP block's caches; load it without MTP", path);
        goto out;
    }
    if (!(s = v4c_session_new(m, &sp, err))) goto out;
    if (pos < 0 || pos > s->max_ctx || mtp_pos < 0 || mtp_pos > pos || (has_pending != 0 && has_pending != 1)) {
        v4c_fail(err, "%s: session holds %d tokens, more than the context of %d (or bad header)", path, pos, s->max_ctx);
        goto fail;
    }
    int layers = c->n_layers + (saved_mtp ? c->n_mtp : 0);
    size_t expect = fixed + (size_t)pos * 4 + (size_t)XHIST * c->hc_mult * c->hidden_size * sizeof(float) + 8;
    for (int l = 0; l < layers; l++) {
        const layer_cache *lc = &s->caches[l];
        int lpos = l < c->n_layers ? pos : mtp_pos;
        expect += (size_t)lc->ring * c->head_dim * sizeof(float) + compressor_bytes(&lc->comp, lpos) + compressor_bytes(&lc->icomp, lpos);
    }
    if (n != expect) {
        v4c_fail(err, "%s: %zu bytes, but a session of %d tokens for this model has %zu", path, n, pos, expect);
        goto fail;
    }
    reader r = {d, n, fixed};
    get(&r, s->tokens, (size_t)pos * 4);
    for (int i = 0; i < pos; i++)
        if (s->tokens[i] < 0 || s->tokens[i] >= c->vocab_size) {
            v4c_fail(err, "%s: token %d is id %d, outside the vocabulary", path, i, s->tokens[i]);
            goto fail;
        }
    for (int l = 0; l < layers; l++) {
        layer_cache *lc = &s->caches[l];
        int lpos = l < c->n_layers ? pos : mtp_pos;
        get(&r, lc->kv_ring, (size_t)lc->ring * c->head_dim * sizeof(float));
        get_compressor(&r, &lc->comp, lpos);
        get_compressor(&r, &lc->icomp, lpos);
    }
    get(&r, s->xhist, (size_t)XHIST * c->hc_mult * c->hidden_size * sizeof(float));
    s->pos = pos;
    if (s->use_mtp) {
        s->mtp_pos = mtp_pos;
        s->has_pending = has_pending;
    }
    goto out;
fail:
    v4c_session_free(s);
    s = NULL;
out:
    free(data);
    return s;
}
