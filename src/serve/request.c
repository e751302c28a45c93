/* Requests: parse and validate the JSON body of /v1/completions and
 * /v1/chat/completions into a job (prompt ids, sampling, limits). Any bad
 * input becomes an OpenAI-style 4xx error naming the parameter. */
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve.h"
#include "util/util.h"

static int set_error(srv_error *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int set_error(srv_error *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->status = status;
    e->type = type;
    e->param = param;
    e->code = code;
    return -1;
}

#define BAD(param, ...) set_error(e, 400, "invalid_request_error", param, NULL, __VA_ARGS__)

/* Optional number in [lo, hi]; absent or null leaves *out. */
static int get_number(json_t *root, const char *key, double lo, double hi, double *out, srv_error *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return BAD(key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return BAD(key, "'%s' must be between %g and %g, got %g", key, lo, hi, d);
    *out = d;
    return 0;
}

static int get_int(json_t *root, const char *key, long long lo, long long hi, long long *out, srv_error *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return BAD(key, "'%s' must be an integer", key);
    long long d = json_integer_value(v);
    if (d < lo || d > hi) return BAD(key, "'%s' must be between %lld and %lld, got %lld", key, lo, hi, d);
    *out = d;
    return 0;
}

static int get_bool(json_t *root, const char *key, int *out, srv_error *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return BAD(key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

/* Fields shared by both endpoints: model, stream, sampling, limits, stop. */
static int parse_common(const srv_context *c, json_t *root, srv_job *j, long long *max_tokens, srv_error *e) {
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model)) {
        if (!json_is_string(model)) return BAD("model", "'model' must be a string");
        if (strcmp(json_string_value(model), c->model_id)) {
            set_error(e, 404, "invalid_request_error", "model", "model_not_found", "The model '%.200s' does not exist (this server has '%.200s')",
                      json_string_value(model), c->model_id);
            return -1;
        }
    }
    if (get_bool(root, "stream", &j->stream, e)) return -1;
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return BAD("stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &j->include_usage, e)) return -1;
    }
    long long n = 1;
    if (get_int(root, "n", 1, 1, &n, e)) return BAD("n", "only n = 1 is supported");
    if (get_int(root, "max_tokens", 1, 1 << 30, max_tokens, e)) return -1;
    if (get_int(root, "max_completion_tokens", 1, 1 << 30, max_tokens, e)) return -1;
    double temp = 1, top_p = 1, min_p = 0, presence = 0, frequency = 0, rep = 1;
    long long top_k = 0, seed = -1;
    if (get_number(root, "temperature", 0, 2, &temp, e) || get_number(root, "top_p", 0, 1, &top_p, e) ||
        get_number(root, "min_p", 0, 1, &min_p, e) || get_number(root, "presence_penalty", -2, 2, &presence, e) ||
        get_number(root, "frequency_penalty", -2, 2, &frequency, e) || get_number(root, "repetition_penalty", 0.01, 100, &rep, e) ||
        get_int(root, "top_k", 0, 1 << 30, &top_k, e) || get_int(root, "seed", -(1LL << 62), 1LL << 62, &seed, e))
        return -1;
    if (top_p <= 0) return BAD("top_p", "'top_p' must be greater than 0");
    if (frequency != 0) return BAD("frequency_penalty", "'frequency_penalty' is not supported (use presence_penalty or repetition_penalty)");
    j->sampling.temperature = (float)temp;
    j->sampling.top_p = (float)top_p;
    j->sampling.min_p = (float)min_p;
    j->sampling.top_k = (int)top_k;
    j->sampling.presence_penalty = (float)presence;
    j->sampling.repetition_penalty = (float)rep;
    if (seed >= 0) j->sampling.seed = (uint64_t)seed;
    else j->sampling.seed = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)j << 16);
    json_t *lp = json_object_get(root, "logprobs");
    if (lp && !json_is_null(lp) && !json_is_false(lp) && !(json_is_integer(lp) && json_integer_value(lp) == 0))
        return BAD("logprobs", "'logprobs' is not supported");
    json_t *echo = json_object_get(root, "echo");
    if (echo && json_is_true(echo)) return BAD("echo", "'echo' is not supported");
    json_t *stop = json_object_get(root, "stop");
    if (stop && !json_is_null(stop)) {
        if (json_is_string(stop)) {
            if (!json_string_length(stop)) return BAD("stop", "a stop string must not be empty");
            j->stop[j->n_stop++] = xstrdup(json_string_value(stop));
        } else if (json_is_array(stop)) {
            if (json_array_size(stop) > SRV_MAX_STOP) return BAD("stop", "at most %d stop strings", SRV_MAX_STOP);
            size_t i;
            json_t *s;
            json_array_foreach(stop, i, s) {
                if (!json_is_string(s) || !json_string_length(s)) return BAD("stop", "'stop' must hold non-empty strings");
                j->stop[j->n_stop++] = xstrdup(json_string_value(s));
            }
        } else return BAD("stop", "'stop' must be a string or an array of strings");
    }
    return 0;
}

static int parse_prompt(const srv_context *c, json_t *root, srv_job *j, srv_error *e) {
    json_t *p = json_object_get(root, "prompt");
    if (!p || json_is_null(p)) return BAD("prompt", "'prompt' is required");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
    char err[V4C_ERR_LEN];
    if (json_is_string(p)) {
        int32_t *ids = NULL;
        long n = v4c_tokenize(c->tok, json_string_value(p), json_string_length(p), &ids, err);
        if (n < 0) return BAD("prompt", "'prompt': %s", err);
        int bos = c->cfg->bos_token_id >= 0;
        j->prompt = xmalloc((size_t)(n + bos + 1) * sizeof(int32_t));
        if (bos) j->prompt[0] = c->cfg->bos_token_id;
        if (n) memcpy(j->prompt + bos, ids, (size_t)n * sizeof(int32_t));
        free(ids);
        j->n_prompt = (int)(n + bos);
    } else if (json_is_array(p)) {
        size_t n = json_array_size(p), i;
        json_t *v;
        j->prompt = xmalloc((n + 1) * sizeof(int32_t));
        json_array_foreach(p, i, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= c->cfg->vocab_size)
                return BAD("prompt", "'prompt' must be a string or an array of token ids in [0, %d)", c->cfg->vocab_size);
            j->prompt[i] = (int32_t)json_integer_value(v);
        }
        j->n_prompt = (int)n;
    } else return BAD("prompt", "'prompt' must be a string or an array of token ids");
    if (j->n_prompt == 0) return BAD("prompt", "the prompt is empty");
    return 0;
}

/* Thinking mode: a reasoning_effort, or an extra "thinking" flag (a boolean
 * or {"type": "enabled"|"disabled"}). */
static int parse_thinking(json_t *root, v4c_chat_options *opt, srv_error *e) {
    json_t *eff = json_object_get(root, "reasoning_effort");
    if (eff && !json_is_null(eff)) {
        if (!json_is_string(eff)) return BAD("reasoning_effort", "'reasoning_effort' must be a string");
        const char *s = json_string_value(eff);
        if (!strcmp(s, "none")) opt->thinking_mode = V4C_MODE_CHAT;
        else if (!strcmp(s, "minimal") || !strcmp(s, "low") || !strcmp(s, "medium")) opt->thinking_mode = V4C_MODE_THINKING;
        else if (!strcmp(s, "high")) opt->thinking_mode = V4C_MODE_THINKING, opt->reasoning_effort = V4C_EFFORT_HIGH;
        else if (!strcmp(s, "max") || !strcmp(s, "xhigh")) opt->thinking_mode = V4C_MODE_THINKING, opt->reasoning_effort = V4C_EFFORT_MAX;
        else return BAD("reasoning_effort", "'reasoning_effort' must be none, minimal, low, medium, high or max");
    }
    json_t *th = json_object_get(root, "thinking");
    if (th && !json_is_null(th)) {
        int on;
        if (json_is_boolean(th)) on = json_is_true(th);
        else if (json_is_object(th) && json_is_string(json_object_get(th, "type"))) {
            const char *t = json_string_value(json_object_get(th, "type"));
            if (strcmp(t, "enabled") && strcmp(t, "disabled")) return BAD("thinking", "'thinking.type' must be enabled or disabled");
            on = !strcmp(t, "enabled");
        } else return BAD("thinking", "'thinking' must be a boolean or {\"type\": \"enabled\"|\"disabled\"}");
        opt->thinking_mode = on ? V4C_MODE_THINKING : V4C_MODE_CHAT;
    }
    return 0;
}

static long encode(const srv_context *c, json_t *messages, json_t *tools, const v4c_chat_options *opt, int32_t **ids, char *err) {
    json_t *o = json_pack("{s:O}", "messages", messages);
    if (tools) json_object_set(o, "tools", tools);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    long n = s ? v4c_chat_encode_ids(c->tok, s, strlen(s), opt, ids, err) : -1;
    if (!s) snprintf(err, V4C_ERR_LEN, "cannot serialize the messages");
    free(s);
    return n;
}

static int parse_messages(const srv_context *c, json_t *root, srv_job *j, srv_error *e) {
    json_t *msgs = json_object_get(root, "messages");
    if (!json_is_array(msgs) || !json_array_size(msgs)) return BAD("messages", "'messages' must be a non-empty array");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            return BAD("messages", "messages[%zu] must be an object with a string 'role'", i);
    }
    json_t *tools = json_object_get(root, "tools");
    if (tools && json_is_null(tools)) tools = NULL;
    if (tools) {
        if (!json_is_array(tools)) return BAD("tools", "'tools' must be an array");
        json_array_foreach(tools, i, m) {
            json_t *f = json_object_get(m, "function");
            if (!json_is_object(m) || !json_is_object(f) || !json_is_string(json_object_get(f, "name")))
                return BAD("tools", "tools[%zu] must be {\"type\": \"function\", \"function\": {\"name\": ...}}", i);
        }
        if (!json_array_size(tools)) tools = NULL;
    }
    json_t *tc = json_object_get(root, "tool_choice");
    if (tc && !json_is_null(tc)) {
        if (json_is_string(tc)) {
            const char *s = json_string_value(tc);
            if (strcmp(s, "none") && strcmp(s, "auto") && strcmp(s, "required"))
                return BAD("tool_choice", "'tool_choice' must be none, auto, required or a function");
            if (!strcmp(s, "none")) tools = NULL; /* the model is not shown the tools */
        } else if (!json_is_object(tc)) return BAD("tool_choice", "'tool_choice' must be a string or an object");
    }
    v4c_chat_options opt;
    v4c_chat_options_default(&opt);
    opt.thinking_mode = V4C_MODE_CHAT; /* thinking only when asked for */
    if (parse_thinking(root, &opt, e)) return -1;
    j->mode = opt.thinking_mode;
    char err[V4C_ERR_LEN];
    long n = encode(c, msgs, tools, &opt, &j->prompt, err);
    if (n < 0) return BAD("messages", "%s", err);
    j->n_prompt = (int)n;
    if (n == 0) return BAD("messages", "the prompt is empty");
    /* A leading system/developer message is a prefix worth snapshotting:
     * requests that share it skip its prefill. */
    const char *role0 = json_string_value(json_object_get(json_array_get(msgs, 0), "role"));
    if (json_array_size(msgs) > 1 && (!strcmp(role0, "system") || !strcmp(role0, "developer"))) {
        json_t *first = json_array();
        json_array_append(first, json_array_get(msgs, 0));
        int32_t *sys = NULL;
        long ns = encode(c, first, tools, &opt, &sys, err);
        json_decref(first);
        int k = 0;
        while (k < ns && k < n && sys[k] == j->prompt[k]) k++;
        if (k > 0 && k < n - 1) j->snap_at = k;
        free(sys);
    }
    return 0;
}

srv_job *srv_parse_request(const srv_context *c, srv_kind kind, const char *body, size_t len, srv_error *e) {
    static atomic_ullong counter;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        set_error(e, 400, "invalid_request_error", NULL, "invalid_json", "The body is not valid JSON: %s (line %d, column %d)", jerr.text,
                  jerr.line, jerr.column);
        return NULL;
    }
    srv_job *j = srv_job_new();
    j->kind = kind;
    long long max_tokens = -1;
    int rc = -1;
    if (!json_is_object(root)) {
        BAD(NULL, "The body must be a JSON object");
        goto out;
    }
    if (parse_common(c, root, j, &max_tokens, e)) goto out;
    if (kind == SRV_CHAT ? parse_messages(c, root, j, e) : parse_prompt(c, root, j, e)) goto out;
    for (int i = 0; i < j->n_prompt; i++) /* a tokenizer larger than the model's vocabulary */
        if (j->prompt[i] < 0 || j->prompt[i] >= c->cfg->vocab_size) {
            BAD(kind == SRV_CHAT ? "messages" : "prompt", "the prompt has token %d, outside the model's vocabulary of %d", j->prompt[i],
                c->cfg->vocab_size);
            goto out;
        }
    if (j->n_prompt >= c->ctx) {
        set_error(e, 400, "invalid_request_error", kind == SRV_CHAT ? "messages" : "prompt", "context_length_exceeded",
                  "This model's maximum context length is %d tokens, but the prompt has %d tokens", c->ctx, j->n_prompt);
        goto out;
    }
    if (max_tokens > 0 && j->n_prompt + max_tokens > c->ctx) {
        set_error(e, 400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                  "This model's maximum context length is %d tokens; the prompt (%d tokens) plus max_tokens (%lld) exceeds it", c->ctx,
                  j->n_prompt, max_tokens);
        goto out;
    }
    j->max_tokens = max_tokens > 0 ? (int)max_tokens : c->ctx - j->n_prompt;
    j->model = xstrdup(c->model_id);
    j->created = (long)time(NULL);
    unsigned long long id = atomic_fetch_add(&counter, 1) + 1;
    snprintf(j->id, sizeof j->id, "%s-%llx%06llx", kind == SRV_CHAT ? "chatcmpl" : "cmpl", (unsigned long long)j->created, id);
    rc = 0;
out:
    json_decref(root);
    if (rc) {
        srv_job_unref(j);
        return NULL;
    }
    return j;
}
