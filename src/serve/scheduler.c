/* The scheduler: one thread that owns the model and the sessions. Each
 * step it admits waiting jobs into free slots (starting from the prefix
 * cache's best snapshot), then runs ONE forward pass for every active
 * sequence (a prefill chunk or one decode token each, v4c_batch_feed),
 * samples each sequence's next token and hands its text to the job. A job
 * that ends frees its slot at once; the next waiting job takes it at the
 * following step. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve.h"
#include "util/util.h"

typedef struct {
    srv_job *job;        /* NULL: the slot is free */
    v4c_session *s;
    v4c_sampler *smp;
    int fed;             /* prompt tokens in the session */
    int decoding;        /* the prompt is in; next is the token to feed */
    int32_t next;
} slot;

struct srv_sched {
    v4c_model *m;
    const v4c_tokenizer *tok;
    srv_options o;
    srv_metrics *met;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping, thread_started;
    srv_job **queue;
    int qhead, qlen;
    slot *slots;
    srv_prefix_cache *cache;
    int V, eos, ctx;
    float *logits, *probs;
    int32_t *ids;
    int *counts, *which, *sample;
    int32_t *tokens;
    v4c_session **ss;
    double last_step_end;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void update_gauges(srv_sched *S) {
    long long active_tokens = 0;
    int active = 0;
    for (int i = 0; i < S->o.parallel; i++)
        if (S->slots[i].job) active++, active_tokens += v4c_session_pos(S->slots[i].s);
    pthread_mutex_lock(&S->met->mu);
    S->met->active = active;
    S->met->active_tokens = active_tokens;
    S->met->cache_entries = srv_prefix_cache_count(S->cache);
    S->met->cache_tokens = srv_prefix_cache_tokens(S->cache);
    pthread_mutex_unlock(&S->met->mu);
}

/* Pass text from the stream decoder to the job; 1 if a stop string ended it. */
static int push_token_text(srv_job *j, int32_t t) {
    const char *text;
    char err[V4C_ERR_LEN];
    long n = v4c_stream_decoder_push(j->dec, t, &text, err);
    return n > 0 ? srv_job_push_text(j, text, (size_t)n) : 0;
}

/* The job is over: flush its text, tell it, keep the session's cache. */
static void release(srv_sched *S, slot *sl, srv_finish why, const char *err) {
    srv_job *j = sl->job;
    if (why == SRV_FINISH_LENGTH || (why == SRV_FINISH_STOP && j->eos)) {
        const char *tail;
        long n = v4c_stream_decoder_flush(j->dec, &tail);
        if (n > 0 && srv_job_push_text(j, tail, (size_t)n)) why = SRV_FINISH_STOP;
    }
    srv_job_finish(j, why, err);
    pthread_mutex_lock(&S->met->mu);
    if (why == SRV_FINISH_CANCELLED) S->met->cancelled++;
    else S->met->completed++;
    pthread_mutex_unlock(&S->met->mu);
    if (why != SRV_FINISH_ERROR) srv_prefix_cache_put(S->cache, sl->s);
    else v4c_session_free(sl->s);
    v4c_sampler_free(sl->smp);
    srv_job_unref(j);
    memset(sl, 0, sizeof *sl);
}

static void admit(srv_sched *S, slot *sl, srv_job *j) {
    int held = 0;
    char err[V4C_ERR_LEN];
    v4c_session *s = srv_prefix_cache_take(S->cache, j->prompt, j->n_prompt, &held);
    if (!s) {
        v4c_session_params p = {.max_ctx = S->ctx, .use_mtp = 0};
        if (!(s = v4c_session_new(S->m, &p, err))) {
            srv_job_finish(j, SRV_FINISH_ERROR, err);
            srv_job_unref(j);
            return;
        }
    }
    sl->job = j;
    sl->s = s;
    sl->fed = held;
    sl->decoding = 0;
    sl->smp = v4c_sampler_new(&j->sampling, S->V);
    for (int i = 0; i < j->n_prompt; i++) v4c_sampler_accept(sl->smp, j->prompt[i]);
    j->dec = v4c_stream_decoder_new(S->tok);
    pthread_mutex_lock(&j->mu);
    j->n_cached = held;
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&S->met->mu);
    S->met->prompt_tokens += j->n_prompt;
    S->met->cached_tokens += held;
    pthread_mutex_unlock(&S->met->mu);
}

/* A sampled token: record it, hand its text over, decide whether the job
 * goes on. */
static void on_token(srv_sched *S, slot *sl, int32_t t) {
    srv_job *j = sl->job;
    v4c_sampler_accept(sl->smp, t);
    pthread_mutex_lock(&j->mu);
    j->n_generated++;
    j->started = 1;
    int n_gen = j->n_generated;
    pthread_mutex_unlock(&j->mu);
    if (t == S->eos) {
        pthread_mutex_lock(&j->mu);
        j->eos = 1;
        pthread_mutex_unlock(&j->mu);
        release(S, sl, SRV_FINISH_STOP, NULL);
        return;
    }
    if (push_token_text(j, t)) {
        release(S, sl, SRV_FINISH_STOP, NULL);
        return;
    }
    if (n_gen >= j->max_tokens || v4c_session_pos(sl->s) + 1 > S->ctx) {
        release(S, sl, SRV_FINISH_LENGTH, NULL);
        return;
    }
    sl->next = t;
}

/* One forward pass over every active sequence. */
static void step(srv_sched *S) {
    int n = 0, n_ids = 0, n_decode = 0;
    for (int i = 0; i < S->o.parallel; i++) {
        slot *sl = &S->slots[i];
        if (!sl->job) continue;
        srv_job *j = sl->job;
        int k = 1;
        if (!sl->decoding) {
            k = j->n_prompt - sl->fed;
            if (k > S->o.prefill_chunk) k = S->o.prefill_chunk;
            if (j->snap_at > sl->fed && j->snap_at < sl->fed + k) k = j->snap_at - sl->fed;
            memcpy(S->ids + n_ids, j->prompt + sl->fed, (size_t)k * sizeof(int32_t));
        } else {
            S->ids[n_ids] = sl->next;
            n_decode++;
        }
        S->ss[n] = sl->s;
        S->counts[n] = k;
        S->which[n++] = i;
        n_ids += k;
    }
    if (!n) return;
    char err[V4C_ERR_LEN];
    double t0 = now();
    int rc = v4c_batch_feed(S->ss, S->ids, S->counts, n, S->logits, err);
    double t1 = now();
    pthread_mutex_lock(&S->met->mu);
    S->met->forwards++;
    S->met->busy_seconds += t1 - t0;
    if (n_decode) {
        double rate = n_decode / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9);
        S->met->decode_tps = S->met->decode_tps > 0 ? 0.8 * S->met->decode_tps + 0.2 * rate : rate;
    }
    pthread_mutex_unlock(&S->met->mu);
    if (rc) {
        for (int k = 0; k < n; k++) release(S, &S->slots[S->which[k]], SRV_FINISH_ERROR, err);
        return;
    }
    for (int k = 0; k < n; k++) { /* prompts: count what was fed, snapshot */
        slot *sl = &S->slots[S->which[k]];
        srv_job *j = sl->job;
        S->sample[k] = 1;
        if (sl->decoding) continue;
        sl->fed += S->counts[k];
        if (sl->fed == j->snap_at && sl->fed < j->n_prompt) srv_prefix_cache_put(S->cache, v4c_session_clone(sl->s));
        if (sl->fed < j->n_prompt) {
            S->sample[k] = 0;
            continue;
        }
        srv_prefix_cache_put(S->cache, v4c_session_clone(sl->s)); /* the whole prompt */
        sl->decoding = 1;
    }
    /* Sampling (a softmax over the vocabulary per sequence) in parallel:
     * each slot has its own sampler; a row of probs per batch row. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < n; k++) {
        if (!S->sample[k]) continue;
        slot *sl = &S->slots[S->which[k]];
        float *probs = S->probs + (size_t)k * S->V;
        v4c_sampler_probs(sl->smp, S->logits + (size_t)k * S->V, probs);
        S->tokens[k] = v4c_sampler_pick(sl->smp, probs);
    }
    int n_new = 0;
    for (int k = 0; k < n; k++)
        if (S->sample[k]) n_new++, on_token(S, &S->slots[S->which[k]], S->tokens[k]);
    pthread_mutex_lock(&S->met->mu);
    S->met->generated_tokens += n_new;
    pthread_mutex_unlock(&S->met->mu);
}

static void *run(void *arg) {
    srv_sched *S = arg;
    v4c_set_threads(S->o.threads); /* OpenMP settings are per thread: -t was set on the main one */
    for (;;) {
        srv_job *admitted[256];
        int n_adm = 0;
        pthread_mutex_lock(&S->mu);
        int free_slots = 0;
        for (int i = 0; i < S->o.parallel; i++) free_slots += !S->slots[i].job;
        while (!S->stopping && free_slots == S->o.parallel && !S->qlen) pthread_cond_wait(&S->cv, &S->mu);
        if (S->stopping) {
            pthread_mutex_unlock(&S->mu);
            break;
        }
        while (S->qlen && n_adm < free_slots && n_adm < 256) {
            admitted[n_adm++] = S->queue[S->qhead];
            S->qhead = (S->qhead + 1) % S->o.max_queue;
            S->qlen--;
        }
        pthread_mutex_lock(&S->met->mu);
        S->met->queue_len = S->qlen;
        pthread_mutex_unlock(&S->met->mu);
        pthread_mutex_unlock(&S->mu);

        for (int a = 0; a < n_adm; a++) {
            srv_job *j = admitted[a];
            pthread_mutex_lock(&j->mu);
            int gone = j->cancelled;
            pthread_mutex_unlock(&j->mu);
            if (gone) {
                srv_job_finish(j, SRV_FINISH_CANCELLED, NULL);
                srv_job_unref(j);
                continue;
            }
            for (int i = 0; i < S->o.parallel; i++)
                if (!S->slots[i].job) {
                    admit(S, &S->slots[i], j);
                    break;
                }
        }
        for (int i = 0; i < S->o.parallel; i++) { /* clients that went away */
            slot *sl = &S->slots[i];
            if (!sl->job) continue;
            pthread_mutex_lock(&sl->job->mu);
            int gone = sl->job->cancelled;
            pthread_mutex_unlock(&sl->job->mu);
            if (gone) release(S, sl, SRV_FINISH_CANCELLED, NULL);
        }
        step(S);
        update_gauges(S);
    }
    return NULL;
}

srv_sched *srv_sched_start(v4c_model *m, const v4c_tokenizer *tok, const srv_options *o, srv_metrics *met, char *err) {
    srv_sched *S = xcalloc(1, sizeof *S);
    const v4c_config *cfg = v4c_model_config(m);
    S->m = m;
    S->tok = tok;
    S->o = *o;
    S->met = met;
    S->V = cfg->vocab_size;
    S->eos = cfg->eos_token_id;
    S->ctx = o->ctx;
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->cv, NULL);
    S->queue = xcalloc((size_t)o->max_queue, sizeof(srv_job *));
    S->slots = xcalloc((size_t)o->parallel, sizeof(slot));
    S->cache = srv_prefix_cache_new(o->cache_entries);
    S->logits = xmalloc((size_t)o->parallel * S->V * sizeof(float));
    S->probs = xmalloc((size_t)o->parallel * S->V * sizeof(float));
    S->sample = xmalloc((size_t)o->parallel * sizeof(int));
    S->tokens = xmalloc((size_t)o->parallel * sizeof(int32_t));
    S->ids = xmalloc((size_t)o->parallel * o->prefill_chunk * sizeof(int32_t));
    S->counts = xmalloc((size_t)o->parallel * sizeof(int));
    S->which = xmalloc((size_t)o->parallel * sizeof(int));
    S->ss = xmalloc((size_t)o->parallel * sizeof(v4c_session *));
    if (pthread_create(&S->thread, NULL, run, S)) {
        v4c_fail(err, "cannot start the scheduler thread");
        srv_sched_free(S);
        return NULL;
    }
    S->thread_started = 1;
    return S;
}

int srv_sched_submit(srv_sched *S, srv_job *j) {
    pthread_mutex_lock(&S->mu);
    if (S->stopping || S->qlen >= S->o.max_queue) {
        pthread_mutex_unlock(&S->mu);
        return -1;
    }
    srv_job_ref(j);
    S->queue[(S->qhead + S->qlen++) % S->o.max_queue] = j;
    pthread_mutex_lock(&S->met->mu);
    S->met->queue_len = S->qlen;
    pthread_mutex_unlock(&S->met->mu);
    pthread_cond_signal(&S->cv);
    pthread_mutex_unlock(&S->mu);
    return 0;
}

void srv_sched_stop(srv_sched *S) {
    if (!S) return;
    pthread_mutex_lock(&S->mu);
    int started = !S->stopping;
    S->stopping = 1;
    pthread_cond_signal(&S->cv);
    pthread_mutex_unlock(&S->mu);
    if (started && S->thread_started) pthread_join(S->thread, NULL);
    pthread_mutex_lock(&S->mu);
    for (; S->qlen; S->qlen--, S->qhead = (S->qhead + 1) % S->o.max_queue) {
        srv_job_finish(S->queue[S->qhead], SRV_FINISH_ERROR, "the server is shutting down");
        srv_job_unref(S->queue[S->qhead]);
    }
    for (int i = 0; i < S->o.parallel; i++)
        if (S->slots[i].job) release(S, &S->slots[i], SRV_FINISH_ERROR, "the server is shutting down");
    pthread_mutex_unlock(&S->mu);
}

void srv_sched_free(srv_sched *S) {
    if (!S) return;
    srv_sched_stop(S);
    srv_prefix_cache_free(S->cache);
    free(S->queue);
    free(S->slots);
    free(S->logits);
    free(S->probs);
    free(S->ids);
    free(S->counts);
    free(S->which);
    free(S->sample);
    free(S->tokens);
    free(S->ss);
    pthread_cond_destroy(&S->cv);
    pthread_mutex_destroy(&S->mu);
    free(S);
}
