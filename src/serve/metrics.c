/* Metrics: counters and gauges in the Prometheus text exposition format. */
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void srv_metrics_destroy(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

char *srv_metrics_text(srv_metrics *m) {
    static const char *ep[EP_N] = {"chat_completions", "completions", "models", "health", "metrics", "other"};
    strbuf b = {0};
    pthread_mutex_lock(&m->mu);
    strbuf_puts(&b, "# HELP v4c_requests_total HTTP requests received, by endpoint.\n# TYPE v4c_requests_total counter\n");
    for (int i = 0; i < EP_N; i++) strbuf_printf(&b, "v4c_requests_total{endpoint=\"%s\"} %lld\n", ep[i], m->requests[i]);
    strbuf_printf(&b,
                   "# HELP v4c_request_errors_total Requests answered with an error status.\n# TYPE v4c_request_errors_total counter\n"
                   "v4c_request_errors_total{class=\"4xx\"} %lld\nv4c_request_errors_total{class=\"5xx\"} %lld\n",
                   m->errors_4xx, m->errors_5xx);
    strbuf_printf(&b,
                   "# HELP v4c_generations_total Generations that ended, by outcome.\n# TYPE v4c_generations_total counter\n"
                   "v4c_generations_total{outcome=\"completed\"} %lld\nv4c_generations_total{outcome=\"cancelled\"} %lld\n",
                   m->completed, m->cancelled);
    strbuf_printf(&b,
                   "# HELP v4c_prompt_tokens_total Prompt tokens of admitted requests.\n# TYPE v4c_prompt_tokens_total counter\n"
                   "v4c_prompt_tokens_total %lld\n"
                   "# HELP v4c_prompt_tokens_cached_total Prompt tokens taken from the prefix cache instead of prefilled.\n"
                   "# TYPE v4c_prompt_tokens_cached_total counter\nv4c_prompt_tokens_cached_total %lld\n"
                   "# HELP v4c_generated_tokens_total Tokens generated.\n# TYPE v4c_generated_tokens_total counter\n"
                   "v4c_generated_tokens_total %lld\n",
                   m->prompt_tokens, m->cached_tokens, m->generated_tokens);
    strbuf_printf(&b,
                   "# HELP v4c_decode_tokens_per_second Aggregate decode rate of recent forward passes (smoothed).\n"
                   "# TYPE v4c_decode_tokens_per_second gauge\nv4c_decode_tokens_per_second %.3f\n"
                   "# HELP v4c_forward_seconds_total Time spent in forward passes.\n# TYPE v4c_forward_seconds_total counter\n"
                   "v4c_forward_seconds_total %.6f\n"
                   "# HELP v4c_forwards_total Batched forward passes.\n# TYPE v4c_forwards_total counter\nv4c_forwards_total %lld\n",
                   m->decode_tps, m->busy_seconds, m->forwards);
    double per_tok = m->kv_bytes_per_token, fixed = m->kv_fixed_bytes;
    strbuf_printf(&b,
                   "# HELP v4c_queue_length Requests waiting for a slot.\n# TYPE v4c_queue_length gauge\nv4c_queue_length %d\n"
                   "# HELP v4c_active_sequences Sequences being decoded.\n# TYPE v4c_active_sequences gauge\nv4c_active_sequences %d\n"
                   "# HELP v4c_prefix_cache_entries Snapshots in the prefix cache.\n# TYPE v4c_prefix_cache_entries gauge\n"
                   "v4c_prefix_cache_entries %lld\n"
                   "# HELP v4c_cache_bytes KV cache bytes (estimated from the model's per-token and fixed bytes), by owner.\n"
                   "# TYPE v4c_cache_bytes gauge\n"
                   "v4c_cache_bytes{owner=\"active\"} %.0f\nv4c_cache_bytes{owner=\"prefix_cache\"} %.0f\n",
                   m->queue_len, m->active, m->cache_entries, m->active * fixed + m->active_tokens * per_tok,
                   m->cache_entries * fixed + m->cache_tokens * per_tok);
    pthread_mutex_unlock(&m->mu);
    return b.data;
}
