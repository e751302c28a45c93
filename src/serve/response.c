/* Responses: error objects, whole (non-streamed) completions and chat
 * completions, and the SSE chunks of streamed ones. Chat text goes through
 * the completion parser: reasoning becomes reasoning_content, DSML markup
 * becomes tool_calls. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "util/util.h"

/* A JSON string from bytes that should be UTF-8 (invalid bytes become '?'). */
static json_t *jstr(const char *s, size_t n) {
    json_t *v = json_stringn(s ? s : "", s ? n : 0);
    if (v) return v;
    char *c = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) c[i] = (unsigned char)s[i] < 0x80 && s[i] ? s[i] : '?';
    v = json_stringn(c, n);
    free(c);
    return v;
}

static char *dump(json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return s ? s : xstrdup("{}");
}

char *srv_error_json(const srv_error *e) {
    json_t *err = json_pack("{s:s,s:s}", "message", e->message, "type", e->type ? e->type : "invalid_request_error");
    json_object_set_new(err, "param", e->param ? json_string(e->param) : json_null());
    json_object_set_new(err, "code", e->code ? json_string(e->code) : json_null());
    return dump(json_pack("{s:o}", "error", err));
}

const char *srv_finish_name(srv_finish f, int has_tool_calls) {
    switch (f) {
    case SRV_FINISH_STOP: return has_tool_calls ? "tool_calls" : "stop";
    case SRV_FINISH_LENGTH: return "length";
    case SRV_FINISH_ERROR: return "error";
    case SRV_FINISH_CANCELLED: return "cancelled";
    default: return NULL;
    }
}

static json_t *usage_json(int prompt, int completion, int cached) {
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", prompt, "completion_tokens", completion, "total_tokens", prompt + completion,
                     "prompt_tokens_details", "cached_tokens", cached);
}

static json_t *tool_call_json(const char *job_id, int index, const char *name, const char *args, int with_index) {
    char id[96];
    snprintf(id, sizeof id, "call_%s_%d", job_id, index);
    json_t *tc = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name", name, "arguments", args);
    if (!tc) tc = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name", "?", "arguments", "{}");
    if (with_index) json_object_set_new(tc, "index", json_integer(index));
    return tc;
}

/* The assistant message of a chat completion: the parser's reading of the
 * text (the raw text as content if the markup is malformed). */
static json_t *chat_message(srv_job *j, const char *eos_text, int *n_tools) {
    v4c_completion_parser *p = v4c_completion_parser_new(j->mode);
    v4c_completion_delta d;
    char err[V4C_ERR_LEN];
    int bad = v4c_completion_parser_feed(p, j->text.data ? j->text.data : "", j->text.len, &d, err);
    if (!bad && j->eos && eos_text) bad = v4c_completion_parser_feed(p, eos_text, strlen(eos_text), &d, err);
    json_t *msg = NULL;
    *n_tools = 0;
    if (!bad) {
        char *mj = v4c_completion_parser_message(p, NULL);
        json_t *pm = mj ? json_loads(mj, 0, NULL) : NULL;
        free(mj);
        if (pm) {
            json_t *calls = json_object_get(pm, "tool_calls");
            const char *content = json_string_value(json_object_get(pm, "content"));
            msg = json_pack("{s:s}", "role", "assistant");
            if (json_array_size(calls)) {
                json_t *out = json_array();
                size_t i;
                json_t *c;
                json_array_foreach(calls, i, c) {
                    json_t *f = json_object_get(c, "function");
                    json_array_append_new(out, tool_call_json(j->id, (int)i, json_string_value(json_object_get(f, "name")),
                                                              json_string_value(json_object_get(f, "arguments")), 0));
                }
                json_object_set_new(msg, "content", content && *content ? json_string(content) : json_null());
                json_object_set_new(msg, "tool_calls", out);
                *n_tools = (int)json_array_size(out);
            } else {
                json_object_set_new(msg, "content", json_string(content ? content : ""));
            }
            if (j->mode == V4C_MODE_THINKING)
                json_object_set(msg, "reasoning_content", json_object_get(pm, "reasoning_content"));
            json_decref(pm);
        }
    }
    if (!msg) msg = json_pack("{s:s,s:o}", "role", "assistant", "content", jstr(j->text.data, j->text.len));
    v4c_completion_parser_free(p);
    return msg;
}

char *srv_response_json(srv_job *j, const char *eos_text) {
    json_t *choice;
    int n_tools = 0;
    if (j->kind == SRV_CHAT) {
        json_t *msg = chat_message(j, eos_text, &n_tools);
        choice = json_pack("{s:i,s:o,s:n}", "index", 0, "message", msg, "logprobs");
    } else {
        choice = json_pack("{s:i,s:o,s:n}", "index", 0, "text", jstr(j->text.data, j->text.len), "logprobs");
    }
    const char *fin = srv_finish_name(j->finish, n_tools > 0);
    json_object_set_new(choice, "finish_reason", fin ? json_string(fin) : json_null());
    json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o}", "id", j->id, "object", j->kind == SRV_CHAT ? "chat.completion" : "text_completion",
                          "created", (json_int_t)j->created, "model", j->model, "choices", choice, "usage",
                          usage_json(j->n_prompt, j->n_generated, j->n_cached));
    return dump(r);
}

/* ---- streaming ---------------------------------------------------------------- */
struct srv_stream {
    srv_kind kind;
    v4c_thinking_mode mode;
    char *id, *model;
    long created;
    int include_usage, sent_role, parse_failed, n_tools;
    v4c_completion_parser *p;
};

srv_stream *srv_stream_new(srv_kind kind, v4c_thinking_mode mode, const char *id, const char *model, long created, int include_usage) {
    srv_stream *s = xcalloc(1, sizeof *s);
    s->kind = kind;
    s->mode = mode;
    s->id = xstrdup(id);
    s->model = xstrdup(model);
    s->created = created;
    s->include_usage = include_usage;
    if (kind == SRV_CHAT) s->p = v4c_completion_parser_new(mode);
    return s;
}

void srv_stream_free(srv_stream *s) {
    if (!s) return;
    v4c_completion_parser_free(s->p);
    free(s->id);
    free(s->model);
    free(s);
}

static void emit(strbuf *out, json_t *v) {
    char *t = dump(v);
    strbuf_puts(out, "data: ");
    strbuf_puts(out, t);
    strbuf_puts(out, "\n\n");
    free(t);
}

/* One chunk; choice_extra is merged into choices[0] (NULL: no choices). */
static void chunk(srv_stream *s, json_t *choice, json_t *usage, strbuf *out) {
    json_t *c = json_pack("{s:s,s:s,s:I,s:s}", "id", s->id, "object", s->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion",
                          "created", (json_int_t)s->created, "model", s->model);
    json_t *choices = json_array();
    if (choice) {
        json_object_set_new(choice, "index", json_integer(0));
        if (!json_object_get(choice, "finish_reason")) json_object_set_new(choice, "finish_reason", json_null());
        json_object_set_new(choice, "logprobs", json_null());
        json_array_append_new(choices, choice);
    }
    json_object_set_new(c, "choices", choices);
    if (usage) json_object_set_new(c, "usage", usage);
    emit(out, c);
}

static void delta(srv_stream *s, json_t *d, strbuf *out) { chunk(s, json_pack("{s:o}", "delta", d), NULL, out); }

static void chat_delta(srv_stream *s, const v4c_completion_delta *d, strbuf *out) {
    if (d->reasoning_len) delta(s, json_pack("{s:o}", "reasoning_content", jstr(d->reasoning, d->reasoning_len)), out);
    if (d->content_len) delta(s, json_pack("{s:o}", "content", jstr(d->content, d->content_len)), out);
    for (int i = 0; i < d->n_tool_calls; i++) {
        json_t *tc = tool_call_json(s->id, s->n_tools++, d->tool_calls[i].name, d->tool_calls[i].arguments, 1);
        delta(s, json_pack("{s:[o]}", "tool_calls", tc), out);
    }
}

static void chat_text(srv_stream *s, const char *text, size_t len, strbuf *out) {
    if (!s->sent_role) {
        s->sent_role = 1;
        delta(s, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), out);
    }
    if (!len) return;
    if (s->parse_failed) {
        delta(s, json_pack("{s:o}", "content", jstr(text, len)), out);
        return;
    }
    v4c_completion_delta d;
    char err[V4C_ERR_LEN];
    if (v4c_completion_parser_feed(s->p, text, len, &d, err)) {
        s->parse_failed = 1; /* malformed markup: the rest goes out as it is */
        delta(s, json_pack("{s:o}", "content", jstr(text, len)), out);
        return;
    }
    chat_delta(s, &d, out);
}

void srv_stream_text(srv_stream *s, const char *text, size_t len, strbuf *out) {
    if (s->kind == SRV_CHAT) chat_text(s, text, len, out);
    else if (len) chunk(s, json_pack("{s:o}", "text", jstr(text, len)), NULL, out);
}

void srv_stream_end(srv_stream *s, int eos, const char *eos_text, srv_finish why, const char *errmsg, int prompt_tokens,
                    int completion_tokens, int cached_tokens, strbuf *out) {
    if (s->kind == SRV_CHAT) {
        chat_text(s, NULL, 0, out);
        if (eos && eos_text && !s->parse_failed) {
            v4c_completion_delta d;
            char err[V4C_ERR_LEN];
            if (!v4c_completion_parser_feed(s->p, eos_text, strlen(eos_text), &d, err)) chat_delta(s, &d, out);
        }
    }
    if (why == SRV_FINISH_ERROR) {
        srv_error e = {.status = 500, .type = "server_error"};
        snprintf(e.message, sizeof e.message, "%s", errmsg && *errmsg ? errmsg : "generation failed");
        char *t = srv_error_json(&e);
        strbuf_printf(out, "data: %s\n\n", t);
        free(t);
    } else {
        const char *fin = srv_finish_name(why, s->n_tools > 0);
        json_t *choice = s->kind == SRV_CHAT ? json_pack("{s:{}}", "delta") : json_pack("{s:s}", "text", "");
        json_object_set_new(choice, "finish_reason", fin ? json_string(fin) : json_null());
        chunk(s, choice, NULL, out);
        if (s->include_usage) chunk(s, NULL, usage_json(prompt_tokens, completion_tokens, cached_tokens), out);
    }
    strbuf_puts(out, "data: [DONE]\n\n");
}
