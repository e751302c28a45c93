/* The HTTP layer on libmicrohttpd (internal thread pool): routing, auth,
 * body limits, JSON responses, and Server-Sent Events for streams. A
 * request waiting for its generation suspends its connection; the
 * scheduler resumes it when there is something to send, so no pool thread
 * ever blocks on the model. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "serve/serve.h"
#include "util/util.h"

struct srv_server {
    srv_options o;
    v4c_model *m;
    v4c_tokenizer *tok;
    srv_context ctx;
    srv_metrics met;
    srv_sched *sched;
    struct MHD_Daemon *d;
    char *eos_text, *model_id;
    int port;
};

/* One HTTP request (MHD's per-connection request context). */
typedef struct {
    srv_endpoint ep;
    strbuf body;
    int too_big;
    srv_job *job;
} request;

/* A streamed response: SSE text waiting to go out, and how far into the
 * job's text it has got. */
typedef struct {
    srv_server *S;
    struct MHD_Connection *conn;
    srv_job *job;
    srv_stream *st;
    strbuf out;
    size_t out_pos, consumed;
    int ended;
} sse;

static void resume_conn(void *conn) { MHD_resume_connection(conn); }

static void count_status(srv_server *S, int status) {
    if (status < 400) return;
    pthread_mutex_lock(&S->met.mu);
    if (status < 500) S->met.errors_4xx++;
    else S->met.errors_5xx++;
    pthread_mutex_unlock(&S->met.mu);
}

static enum MHD_Result send_text(srv_server *S, struct MHD_Connection *c, int status, const char *type, const char *body) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    count_status(S, status);
    return ok;
}

static enum MHD_Result send_json(srv_server *S, struct MHD_Connection *c, int status, char *body) {
    enum MHD_Result ok = send_text(S, c, status, "application/json", body);
    free(body);
    return ok;
}

static enum MHD_Result send_error(srv_server *S, struct MHD_Connection *c, int status, const char *type, const char *code,
                                  const char *msg) {
    srv_error e = {.status = status, .type = type, .code = code};
    snprintf(e.message, sizeof e.message, "%s", msg);
    return send_json(S, c, status, srv_error_json(&e));
}

/* ---- streaming -------------------------------------------------------------------- */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse *x = cls;
    if (x->out_pos == x->out.len && !x->ended) {
        x->out.len = x->out_pos = 0;
        srv_job *j = x->job;
        pthread_mutex_lock(&j->mu);
        size_t end = j->safe_len;
        while (end > x->consumed && end < j->text.len && ((unsigned char)j->text.data[end] & 0xC0) == 0x80) end--;
        srv_finish fin = j->finish;
        if (fin) end = j->text.len;
        if (end == x->consumed && !fin) { /* nothing yet: sleep until the scheduler has more */
            j->conn = x->conn;
            j->resume = resume_conn;
            j->suspended = 1;
            MHD_suspend_connection(x->conn);
            pthread_mutex_unlock(&j->mu);
            return 0;
        }
        char *text = xmalloc(end - x->consumed + 1);
        if (end > x->consumed) memcpy(text, j->text.data + x->consumed, end - x->consumed);
        size_t n = end - x->consumed;
        int eos = j->eos, n_prompt = j->n_prompt, n_gen = j->n_generated, n_cached = j->n_cached;
        char err[V4C_ERR_LEN];
        memcpy(err, j->err, sizeof err);
        pthread_mutex_unlock(&j->mu);
        x->consumed = end;
        srv_stream_text(x->st, text, n, &x->out);
        free(text);
        if (fin) {
            srv_stream_end(x->st, eos, x->S->eos_text, fin, err, n_prompt, n_gen, n_cached, &x->out);
            x->ended = 1;
        }
    }
    if (x->out_pos == x->out.len) return x->ended ? MHD_CONTENT_READER_END_OF_STREAM : 0;
    size_t n = x->out.len - x->out_pos < max ? x->out.len - x->out_pos : max;
    memcpy(buf, x->out.data + x->out_pos, n);
    x->out_pos += n;
    return (ssize_t)n;
}

static void sse_free(void *cls) {
    sse *x = cls;
    srv_job_cancel(x->job); /* no-op for a finished job; frees the slot of one whose client left */
    srv_job_unref(x->job);
    srv_stream_free(x->st);
    strbuf_free(&x->out);
    free(x);
}

static enum MHD_Result start_stream(srv_server *S, struct MHD_Connection *c, srv_job *j) {
    sse *x = xcalloc(1, sizeof *x);
    x->S = S;
    x->conn = c;
    x->job = j;
    srv_job_ref(j);
    x->st = srv_stream_new(j->kind, j->mode, j->id, j->model, j->created, j->include_usage);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, x, sse_free);
    if (!r) {
        sse_free(x);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- generation endpoints ---------------------------------------------------------- */
static enum MHD_Result finish_whole(srv_server *S, struct MHD_Connection *c, srv_job *j) {
    pthread_mutex_lock(&j->mu);
    srv_finish fin = j->finish;
    if (!fin) { /* resumed early: wait on */
        j->conn = c;
        j->resume = resume_conn;
        j->suspended = 1;
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&j->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&j->mu);
    if (fin == SRV_FINISH_ERROR || fin == SRV_FINISH_CANCELLED)
        return send_error(S, c, 500, "server_error", NULL, j->err[0] ? j->err : "the generation failed");
    return send_json(S, c, MHD_HTTP_OK, srv_response_json(j, S->eos_text));
}

static enum MHD_Result generate(srv_server *S, struct MHD_Connection *c, request *r) {
    srv_error e = {0};
    srv_job *j = srv_parse_request(&S->ctx, r->ep == EP_CHAT ? SRV_CHAT : SRV_COMPLETION, r->body.data ? r->body.data : "", r->body.len, &e);
    if (!j) return send_json(S, c, e.status, srv_error_json(&e));
    if (srv_sched_submit(S->sched, j)) {
        srv_job_unref(j);
        return send_error(S, c, 503, "server_error", "overloaded", "too many requests are waiting; try again later");
    }
    r->job = j;
    if (j->stream) return start_stream(S, c, j);
    return finish_whole(S, c, j);
}

/* ---- other endpoints ----------------------------------------------------------------- */
static enum MHD_Result models(srv_server *S, struct MHD_Connection *c) {
    json_t *m = json_pack("{s:s,s:s,s:i,s:s,s:i}", "id", S->model_id, "object", "model", "created", 0, "owned_by", "v4c", "context_length",
                          S->ctx.ctx);
    json_t *list = json_pack("{s:s,s:[o]}", "object", "list", "data", m);
    char *body = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    return body ? send_json(S, c, MHD_HTTP_OK, body) : MHD_NO;
}

static int authorized(srv_server *S, struct MHD_Connection *c) {
    if (!S->o.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, S->o.api_key);
}

static srv_endpoint route(const char *url) {
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) return EP_CHAT;
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")) return EP_COMPLETIONS;
    if (!strcmp(url, "/v1/models") || !strcmp(url, "/models")) return EP_MODELS;
    if (!strcmp(url, "/health")) return EP_HEALTH;
    if (!strcmp(url, "/metrics")) return EP_METRICS;
    return EP_OTHER;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                              const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    srv_server *S = cls;
    request *r = *con_cls;
    if (!r) { /* headers only so far */
        r = xcalloc(1, sizeof *r);
        r->ep = route(url);
        *con_cls = r;
        pthread_mutex_lock(&S->met.mu);
        S->met.requests[r->ep]++;
        pthread_mutex_unlock(&S->met.mu);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > S->o.max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", S->o.max_body);
            return send_error(S, c, 413, "invalid_request_error", "request_too_large", msg);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->body.len + *upload_size > S->o.max_body) r->too_big = 1;
        else strbuf_append(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->job) return finish_whole(S, c, r->job); /* resumed: the generation is over */
    if (r->ep != EP_HEALTH && !authorized(S, c))
        return send_error(S, c, 401, "invalid_request_error", "invalid_api_key", "Incorrect or missing API key: send 'Authorization: Bearer KEY'");
    int post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    switch (r->ep) {
    case EP_CHAT:
    case EP_COMPLETIONS:
        if (!post) return send_error(S, c, 405, "invalid_request_error", "method_not_allowed", "use POST");
        if (r->too_big) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", S->o.max_body);
            return send_error(S, c, 413, "invalid_request_error", "request_too_large", msg);
        }
        return generate(S, c, r);
    case EP_MODELS:
        if (!get) return send_error(S, c, 405, "invalid_request_error", "method_not_allowed", "use GET");
        return models(S, c);
    case EP_HEALTH:
        if (!get) return send_error(S, c, 405, "invalid_request_error", "method_not_allowed", "use GET");
        return send_text(S, c, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}");
    case EP_METRICS: {
        if (!get) return send_error(S, c, 405, "invalid_request_error", "method_not_allowed", "use GET");
        char *t = srv_metrics_text(&S->met);
        enum MHD_Result ok = send_text(S, c, MHD_HTTP_OK, "text/plain; version=0.0.4", t);
        free(t);
        return ok;
    }
    default: {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown path '%.200s'", url);
        return send_error(S, c, 404, "invalid_request_error", "not_found", msg);
    }
    }
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    request *r = *con_cls;
    if (!r) return;
    if (r->job) {
        srv_job_cancel(r->job);
        srv_job_unref(r->job);
    }
    strbuf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- start / stop ------------------------------------------------------------------------ */
void srv_options_default(srv_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 4;
    o->max_body = 8 << 20;
    o->max_queue = 256;
    o->prefill_chunk = 256;
    o->cache_entries = 8;
}

srv_server *srv_start(const srv_options *o, char *err) {
    srv_server *S = xcalloc(1, sizeof *S);
    S->o = *o;
    srv_metrics_init(&S->met);
    char path[4200];
    /* The scheduler thread runs every forward pass with the threads -t asked
     * for; this thread loads the model alone. Had it run a parallel region
     * (the head's packing does), its own OpenMP pool would stay, libgomp
     * would count more threads than cores and cut its spinning to ~100
     * rounds, and the scheduler's threads would sleep between the many
     * parallel regions of a step, each woken by a futex: 15% of the
     * server's time under load on the tiny model (BENCHMARKS.md). */
    if (S->o.threads <= 0) S->o.threads = v4c_get_threads();
    v4c_set_threads(1);
    if (!(S->m = v4c_model_open(o->model_dir, err))) goto fail;
    snprintf(path, sizeof path, "%s/tokenizer.json", o->model_dir);
    if (!(S->tok = v4c_tokenizer_load(path, err))) goto fail;
    const v4c_config *cfg = v4c_model_config(S->m);
    if (cfg->eos_token_id >= 0) {
        size_t n;
        const char *t = v4c_tokenizer_token_bytes(S->tok, cfg->eos_token_id, &n);
        if (t) {
            S->eos_text = xmalloc(n + 1);
            memcpy(S->eos_text, t, n);
            S->eos_text[n] = 0;
        }
    }
    if (o->model_id) S->model_id = xstrdup(o->model_id);
    else {
        size_t n = strlen(o->model_dir);
        while (n > 1 && o->model_dir[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && o->model_dir[b - 1] != '/') b--;
        S->model_id = xmalloc(n - b + 1);
        memcpy(S->model_id, o->model_dir + b, n - b);
        S->model_id[n - b] = 0;
    }
    S->o.ctx = o->ctx > 0 ? o->ctx : cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings : 4096;
    S->ctx = (srv_context){S->tok, cfg, S->model_id, S->o.ctx};
    v4c_model_stats st;
    v4c_model_get_stats(S->m, &st);
    S->met.kv_bytes_per_token = st.kv_bytes_per_token;
    S->met.kv_fixed_bytes = (double)st.kv_fixed_bytes;
    if (!(S->sched = srv_sched_start(S->m, S->tok, &S->o, &S->met, err))) goto fail;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int gai = getaddrinfo(o->host, port, &hints, &ai);
    if (gai) {
        v4c_fail(err, "cannot resolve host '%s': %s", o->host, gai_strerror(gai));
        goto fail;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned pool = (unsigned)(o->threads_http > 0 ? o->threads_http : o->parallel + 4);
    S->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, handle, S, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
                            pool, MHD_OPTION_NOTIFY_COMPLETED, completed, S, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!S->d) {
        v4c_fail(err, "cannot listen on %s:%d (in use? permission?)", o->host, o->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S->d, MHD_DAEMON_INFO_BIND_PORT);
    S->port = info ? info->port : o->port;
    return S;
fail:
    srv_stop(S);
    return NULL;
}

int srv_port(const srv_server *S) { return S->port; }

void srv_stop(srv_server *S) {
    if (!S) return;
    srv_sched_stop(S->sched); /* ends every job, resuming their connections */
    if (S->d) MHD_stop_daemon(S->d);
    srv_sched_free(S->sched);
    v4c_tokenizer_free(S->tok);
    v4c_model_free(S->m);
    srv_metrics_destroy(&S->met);
    free(S->eos_text);
    free(S->model_id);
    free(S);
}
