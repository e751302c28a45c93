/* The decode loop: prefill, then one token per step, or with the MTP block
 * two positions per step (its draft and the token after), rolling the
 * caches back when the draft is rejected. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"
#include "v4c.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    v4c_session *s;
    v4c_sampler *smp;
    const v4c_generate_opts *o;
    v4c_generate_stats *st;
    int V, done;
    float *probs, *qprobs;
} decoder;

/* Record and hand out one token; sets done at EOS, the limit or a stop. */
static void emit(decoder *d, int32_t t) {
    d->st->generated++;
    v4c_sampler_accept(d->smp, t);
    if (d->o->on_token && d->o->on_token(d->o->user, t)) d->done = 1;
    if (t == d->o->eos_id || d->st->generated >= d->o->max_tokens) d->done = 1;
    if (d->o->interrupt && *d->o->interrupt) d->done = 1;
}

/* Plain decoding: feed the last token, sample the next. */
static int decode_plain(decoder *d, float *logits, int32_t t, int max_ctx, char *err) {
    while (!d->done) {
        if (v4c_session_pos(d->s) >= max_ctx) return v4c_fail(err, "the context of %d tokens is full", max_ctx);
        if (v4c_session_feed(d->s, &t, 1, logits, err)) return -1;
        t = v4c_sampler_sample(d->smp, logits);
        emit(d, t);
    }
    return 0;
}

/* Speculative decoding with the MTP draft (Leviathan et al. acceptance:
 * accept d with probability min(1, p(d)/q(d)), else draw from
 * normalise(max(0, p - q)); greedy accepts iff d is the argmax). */
static int decode_mtp(decoder *d, float *logits, int32_t t0, int max_ctx, char *err) {
    int V = d->V;
    float *pair = xmalloc((size_t)2 * V * sizeof(float)), *q = xmalloc((size_t)V * sizeof(float));
    int rc = 0;
    while (!d->done) {
        if (v4c_session_pos(d->s) + 2 > max_ctx) { /* no room to verify a draft */
            rc = v4c_session_feed(d->s, &t0, 1, logits, err);
            if (rc) break;
            t0 = v4c_sampler_sample(d->smp, logits);
            emit(d, t0);
            continue;
        }
        if ((rc = v4c_session_mtp(d->s, t0, q, err))) break;
        v4c_sampler_probs(d->smp, q, d->qprobs);
        int greedy = v4c_sampler_greedy(d->smp);
        int32_t draft = v4c_sampler_pick(d->smp, d->qprobs);
        int32_t two[2] = {t0, draft};
        if ((rc = v4c_session_feed_all(d->s, two, 2, pair, err))) break;
        d->st->drafted++;
        v4c_sampler_probs(d->smp, pair, d->probs);
        int accept;
        if (greedy) accept = v4c_sampler_pick(d->smp, d->probs) == draft;
        else accept = v4c_sampler_uniform(d->smp) * d->qprobs[draft] < d->probs[draft];
        if (accept) {
            d->st->accepted++;
            emit(d, draft);
            if (d->done) break;
            t0 = v4c_sampler_sample(d->smp, pair + V);
            emit(d, t0);
        } else {
            if ((rc = v4c_session_rollback(d->s, 1, err))) break;
            if (greedy) {
                t0 = v4c_sampler_pick(d->smp, d->probs);
            } else {
                double z = 0;
                for (int i = 0; i < V; i++) z += d->probs[i] = fmaxf(d->probs[i] - d->qprobs[i], 0);
                if (z > 0)
                    for (int i = 0; i < V; i++) d->probs[i] = (float)(d->probs[i] / z);
                else
                    v4c_sampler_probs(d->smp, pair, d->probs);
                t0 = v4c_sampler_draw(d->smp, d->probs);
            }
            emit(d, t0);
        }
    }
    free(q);
    free(pair);
    return rc;
}

int v4c_generate(v4c_session *s, v4c_sampler *smp, const int32_t *prompt, int n_prompt, const v4c_generate_opts *o,
                 v4c_generate_stats *st, char err[V4C_ERR_LEN]) {
    memset(st, 0, sizeof *st);
    int V = v4c_session_vocab(s), max_ctx = v4c_session_max_ctx(s);
    if (n_prompt == 0 && v4c_session_pos(s) == 0) return v4c_fail(err, "nothing to continue: the prompt is empty");
    if (v4c_session_pos(s) + n_prompt >= max_ctx)
        return v4c_fail(err, "the prompt (%d tokens after %d cached) leaves no room in the context of %d tokens", n_prompt, v4c_session_pos(s), max_ctx);
    decoder d = {s, smp, o, st, V, 0, xmalloc((size_t)V * sizeof(float)), xmalloc((size_t)V * sizeof(float))};
    float *logits = xmalloc((size_t)V * sizeof(float));
    int rc = 0;
    const int32_t *ctx = v4c_session_tokens(s);
    for (int i = 0; i < v4c_session_pos(s); i++) v4c_sampler_accept(smp, ctx[i]);
    for (int i = 0; i < n_prompt; i++) v4c_sampler_accept(smp, prompt[i]);

    double t = now();
    if (n_prompt == 0) { /* the session holds the whole prompt: redo its last token for the logits */
        int32_t last = ctx[v4c_session_pos(s) - 1];
        rc = v4c_session_rollback(s, 1, err) || v4c_session_feed(s, &last, 1, logits, err);
    }
    int chunk = o->batch > 0 ? o->batch : (n_prompt > 0 ? n_prompt : 1);
    for (int i = 0; !rc && i < n_prompt; i += chunk) {
        int k = n_prompt - i < chunk ? n_prompt - i : chunk;
        rc = v4c_session_feed(s, prompt + i, k, i + k == n_prompt ? logits : NULL, err);
    }
    st->prompt_tokens = n_prompt;
    st->prefill_seconds = now() - t;
    t = now();
    if (!rc && o->max_tokens > 0) {
        int32_t first = v4c_sampler_sample(d.smp, logits);
        emit(&d, first);
        if (o->use_mtp) rc = decode_mtp(&d, logits, first, max_ctx, err);
        else rc = decode_plain(&d, logits, first, max_ctx, err);
    }
    st->decode_seconds = now() - t;
    free(logits);
    free(d.probs);
    free(d.qprobs);
    return rc ? -1 : 0;
}
