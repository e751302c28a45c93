/* v4c serve: an OpenAI-compatible HTTP server with continuous batching.
 *
 * Threads: libmicrohttpd's thread pool does the I/O (request parsing,
 * response formatting, SSE); ONE scheduler thread owns the model and the
 * sessions and runs every forward pass (v4c_batch_feed over all active
 * sequences). They meet in srv_job objects (job.c), each guarded by its own
 * mutex, and in the scheduler's queue. */
#ifndef V4C_SERVE_H
#define V4C_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"
#include "v4c.h"

/* Responses are built in a strbuf (util/strbuf.h). */

/* ---- server options (cmd_serve.c fills them) ---------------------------------- */
typedef struct {
    const char *model_dir;
    const char *host;      /* default 127.0.0.1 */
    int port;              /* 0: any free port (srv_port says which) */
    int parallel;          /* sequences decoded together (slots) */
    int ctx;               /* per-sequence context; 0: the model's */
    const char *api_key;   /* NULL: no auth */
    int threads_http;      /* libmicrohttpd pool size; 0: parallel + 4 */
    size_t max_body;       /* request body limit in bytes */
    int max_queue;         /* waiting requests beyond the slots; more get 503 */
    int prefill_chunk;     /* prompt tokens per sequence per forward */
    int cache_entries;     /* prefix-cache snapshots kept */
    int threads;           /* threads of the forward passes; 0: v4c_get_threads() when the server starts */
    const char *model_id;  /* the name /v1/models reports; default: basename of model_dir */
} srv_options;

void srv_options_default(srv_options *o);

/* ---- jobs: one request's generation (job.c) ---------------------------------- */
typedef enum { SRV_COMPLETION = 0, SRV_CHAT = 1 } srv_kind;
typedef enum { SRV_FINISH_NONE = 0, SRV_FINISH_STOP, SRV_FINISH_LENGTH, SRV_FINISH_ERROR, SRV_FINISH_CANCELLED } srv_finish;

#define SRV_MAX_STOP 4

typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    /* the request (immutable once submitted) */
    srv_kind kind;
    int stream, include_usage;
    int32_t *prompt;
    int n_prompt;
    int max_tokens;
    v4c_sampling sampling;
    char *stop[SRV_MAX_STOP];
    int n_stop;
    v4c_thinking_mode mode;
    int snap_at;           /* also snapshot the prompt's cache after this many tokens (0: no) */
    char id[48];
    long created;
    char *model;
    /* the result (under mu) */
    strbuf text;          /* decoded completion text, EOS and stop string excluded */
    size_t safe_len;       /* bytes of text that no stop string can still claim */
    int n_generated, n_cached, started, eos;
    srv_finish finish;     /* set once: the job is over */
    char err[V4C_ERR_LEN];
    int cancelled;         /* the client went away or a stop string matched */
    /* the scheduler's text state (scheduler thread only) */
    v4c_stream_decoder *dec;
    /* the HTTP side: a suspended connection to resume when the job ends */
    void *conn;
    int suspended;
    void (*resume)(void *conn);
} srv_job;

srv_job *srv_job_new(void);
void srv_job_ref(srv_job *j);
void srv_job_unref(srv_job *j);
/* Scheduler side: a generated token's text arrived (not for EOS). Applies the
 * stop strings; returns 1 if one matched (the job is then finished). */
int srv_job_push_text(srv_job *j, const char *text, size_t len);
/* Scheduler side: the job is over (finish reason, an error message or NULL). */
void srv_job_finish(srv_job *j, srv_finish why, const char *err);
/* HTTP side: ask the scheduler to drop the job (client gone). */
void srv_job_cancel(srv_job *j);

/* ---- the prefix cache (prefix_cache.c; scheduler thread only) ------------------- */
typedef struct srv_prefix_cache srv_prefix_cache;
srv_prefix_cache *srv_prefix_cache_new(int max_entries);
void srv_prefix_cache_free(srv_prefix_cache *c);
/* A session holding the longest cached prefix of ids (at most n - 1 tokens,
 * so there is at least one token left to feed), or NULL. */
v4c_session *srv_prefix_cache_take(srv_prefix_cache *c, const int32_t *ids, int n, int *held);
/* Keep s (ownership passes to the cache; it may free it at once). */
void srv_prefix_cache_put(srv_prefix_cache *c, v4c_session *s);
int srv_prefix_cache_count(const srv_prefix_cache *c);
long long srv_prefix_cache_tokens(const srv_prefix_cache *c);

/* ---- metrics (metrics.c) ------------------------------------------------------- */
typedef struct {
    pthread_mutex_t mu;
    long long requests[8];  /* by endpoint: see srv_endpoint */
    long long errors_4xx, errors_5xx;
    long long prompt_tokens, cached_tokens, generated_tokens;
    long long completed, cancelled;
    int queue_len, active;
    double decode_tps;      /* generated tokens/s, recent (smoothed) */
    double busy_seconds;    /* time spent in forward passes */
    long long forwards;
    long long cache_entries, cache_tokens, active_tokens;
    double kv_bytes_per_token, kv_fixed_bytes;
} srv_metrics;

typedef enum { EP_CHAT = 0, EP_COMPLETIONS, EP_MODELS, EP_HEALTH, EP_METRICS, EP_OTHER, EP_N } srv_endpoint;
void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
char *srv_metrics_text(srv_metrics *m); /* Prometheus exposition, malloc'd */

/* ---- the scheduler (scheduler.c) ------------------------------------------------ */
typedef struct srv_sched srv_sched;
srv_sched *srv_sched_start(v4c_model *m, const v4c_tokenizer *tok, const srv_options *o, srv_metrics *met, char *err);
/* Stop: every queued or running job ends (with an error); later submits fail. */
void srv_sched_stop(srv_sched *s);
void srv_sched_free(srv_sched *s);
/* Queue a job (the scheduler takes a reference). -1 if the queue is full. */
int srv_sched_submit(srv_sched *s, srv_job *j);

/* ---- requests (request.c) ------------------------------------------------------ */
typedef struct {
    const v4c_tokenizer *tok;
    const v4c_config *cfg;
    const char *model_id;
    int ctx;                /* per-sequence context size */
} srv_context;

/* An OpenAI-style error: HTTP status + {"error": {...}}. */
typedef struct {
    int status;
    char message[V4C_ERR_LEN];
    const char *type, *param, *code;
} srv_error;

/* Parse and validate a request body into a new job (NULL + e on bad input). */
srv_job *srv_parse_request(const srv_context *c, srv_kind kind, const char *body, size_t len, srv_error *e);

/* ---- responses (response.c) ----------------------------------------------------- */
char *srv_error_json(const srv_error *e);
const char *srv_finish_name(srv_finish f, int has_tool_calls);
/* The whole (non-streamed) response body for a finished job. */
char *srv_response_json(srv_job *j, const char *eos_text);

/* Streaming: turns completion text into SSE events ("data: {...}\n\n"). */
typedef struct srv_stream srv_stream;
srv_stream *srv_stream_new(srv_kind kind, v4c_thinking_mode mode, const char *id, const char *model, long created,
                           int include_usage);
void srv_stream_free(srv_stream *s);
/* New completion text (EOS excluded). */
void srv_stream_text(srv_stream *s, const char *text, size_t len, strbuf *out);
/* The end: eos if the model emitted its end-of-sentence token (its text is
 * eos_text), the finish reason, the token counts; then "data: [DONE]". */
void srv_stream_end(srv_stream *s, int eos, const char *eos_text, srv_finish why, const char *errmsg, int prompt_tokens,
                    int completion_tokens, int cached_tokens, strbuf *out);

/* ---- the server (http.c) -------------------------------------------------------- */
typedef struct srv_server srv_server;
srv_server *srv_start(const srv_options *o, char *err);
int srv_port(const srv_server *s);
void srv_stop(srv_server *s);

#endif
