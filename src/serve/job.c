/* Jobs: one request's generation, shared (reference-counted) between the
 * HTTP thread that serves it and the scheduler thread that runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "util/util.h"

srv_job *srv_job_new(void) {
    srv_job *j = xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->sampling = v4c_sampling_default();
    return j;
}

void srv_job_ref(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void srv_job_unref(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    free(j->prompt);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->model);
    strbuf_free(&j->text);
    v4c_stream_decoder_free(j->dec);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Wake whoever waits on the job: a suspended streaming connection (at
 * each new piece of text), or one waiting for the whole result (at the
 * end). Called with mu held. */
static void wake(srv_job *j) {
    pthread_cond_broadcast(&j->cv);
    if (j->suspended && j->resume && (j->finish || j->stream)) {
        j->suspended = 0;
        j->resume(j->conn);
    }
}

int srv_job_push_text(srv_job *j, const char *text, size_t len) {
    pthread_mutex_lock(&j->mu);
    size_t old = j->text.len;
    strbuf_append(&j->text, text, len);
    int matched = 0;
    size_t hold = 0, cut = j->text.len;
    for (int i = 0; i < j->n_stop; i++) { /* the earliest match wins */
        size_t sl = strlen(j->stop[i]);
        size_t from = old >= sl ? old - sl + 1 : 0;
        char *hit = j->text.len >= from + sl ? memmem(j->text.data + from, j->text.len - from, j->stop[i], sl) : NULL;
        if (hit && (size_t)(hit - j->text.data) <= cut) {
            cut = (size_t)(hit - j->text.data);
            matched = 1;
        }
    }
    if (matched) {
        j->text.len = cut;
        j->text.data[cut] = 0;
    }
    if (!matched) /* hold back a tail that may still become a stop string */
        for (int i = 0; i < j->n_stop; i++) {
            size_t sl = strlen(j->stop[i]);
            for (size_t k = sl - 1; k > hold && k > 0; k--)
                if (k <= j->text.len && !memcmp(j->text.data + j->text.len - k, j->stop[i], k)) {
                    hold = k;
                    break;
                }
        }
    j->safe_len = j->text.len - hold;
    if (matched && !j->finish) j->finish = SRV_FINISH_STOP;
    wake(j);
    pthread_mutex_unlock(&j->mu);
    return matched;
}

void srv_job_finish(srv_job *j, srv_finish why, const char *err) {
    pthread_mutex_lock(&j->mu);
    if (!j->finish) {
        j->finish = why;
        if (err) snprintf(j->err, sizeof j->err, "%s", err);
    }
    j->safe_len = j->text.len;
    wake(j);
    pthread_mutex_unlock(&j->mu);
}

void srv_job_cancel(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancelled = 1;
    j->conn = NULL;
    j->suspended = 0;
    pthread_mutex_unlock(&j->mu);
}
