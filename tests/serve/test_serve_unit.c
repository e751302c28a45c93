/* Server unit tests without a model: SSE formatting of streamed chat and
 * text completions (reasoning, content and tool-call deltas from canned DSML
 * completions), whole responses, error objects, stop strings, and request
 * validation (with the V4 tokenizer).
 * usage: test_serve_unit TOKENIZER_JSON */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "test_util.h"

#define EOS "<｜end▁of▁sentence｜>"

/* Split SSE text into its data payloads (JSON objects; "[DONE]" last). */
static int events(const char *sse, json_t **out, int max, int *done) {
    int n = 0;
    *done = 0;
    const char *p = sse;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        if (!end || strncmp(p, "data: ", 6)) {
            CHECK(0, "malformed SSE at '%.40s'", p);
            return n;
        }
        if (!strncmp(p + 6, "[DONE]", 6)) {
            *done = 1;
            CHECK(end[2] == 0, "data after [DONE]");
            return n;
        }
        json_error_t je;
        json_t *v = json_loadb(p + 6, (size_t)(end - p - 6), 0, &je);
        CHECK(v != NULL, "chunk is not JSON: %s", je.text);
        if (v && n < max) out[n++] = v;
        else json_decref(v);
        p = end + 2;
    }
    return n;
}

/* Feed text in pieces of a few UTF-8 characters, as the stream decoder would. */
static void feed_pieces(srv_stream *st, const char *text, strbuf *out) {
    size_t len = strlen(text), i = 0;
    while (i < len) {
        size_t j = i, chars = 0;
        while (j < len && chars < 3) {
            j++;
            while (j < len && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
            chars++;
        }
        srv_stream_text(st, text + i, j - i, out);
        i = j;
    }
}

static const char *delta_str(json_t *chunk, const char *key) {
    json_t *d = json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta");
    return json_string_value(json_object_get(d, key));
}

static void test_stream_tool_call(void) {
    const char *completion = "Let me check.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
                             "<｜DSML｜parameter name=\"location\" string=\"true\">Beijing</｜DSML｜parameter>\n"
                             "<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n"
                             "</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
    srv_stream *st = srv_stream_new(SRV_CHAT, V4C_MODE_CHAT, "chatcmpl-x", "m", 123, 1);
    strbuf out = {0};
    feed_pieces(st, completion, &out);
    srv_stream_end(st, 1, EOS, SRV_FINISH_STOP, NULL, 10, 40, 4, &out);
    json_t *ev[256];
    int done, n = events(out.data, ev, 256, &done);
    CHECK(done, "no [DONE]");
    CHECK(n >= 4, "only %d chunks", n);
    CHECK(!strcmp(json_string_value(json_object_get(ev[0], "object")), "chat.completion.chunk"), "object");
    CHECK(delta_str(ev[0], "role") && !strcmp(delta_str(ev[0], "role"), "assistant"), "first chunk has the role");
    strbuf content = {0};
    int n_calls = 0;
    const char *finish = NULL;
    for (int i = 0; i < n; i++) {
        json_t *choices = json_object_get(ev[i], "choices");
        CHECK(!strcmp(json_string_value(json_object_get(ev[i], "id")), "chatcmpl-x"), "id");
        if (!json_array_size(choices)) { /* the usage chunk */
            json_t *u = json_object_get(ev[i], "usage");
            CHECK(json_integer_value(json_object_get(u, "prompt_tokens")) == 10, "usage prompt");
            CHECK(json_integer_value(json_object_get(u, "completion_tokens")) == 40, "usage completion");
            CHECK(json_integer_value(json_object_get(u, "total_tokens")) == 50, "usage total");
            CHECK(json_integer_value(json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens")) == 4, "cached");
            CHECK(i == n - 1, "usage is the last chunk");
            continue;
        }
        json_t *c0 = json_array_get(choices, 0);
        if (json_is_string(json_object_get(c0, "finish_reason"))) finish = json_string_value(json_object_get(c0, "finish_reason"));
        const char *t = delta_str(ev[i], "content");
        if (t) strbuf_puts(&content, t);
        CHECK(!delta_str(ev[i], "reasoning_content"), "no reasoning in chat mode");
        json_t *calls = json_object_get(json_object_get(c0, "delta"), "tool_calls");
        if (calls) {
            json_t *tc = json_array_get(calls, 0), *f = json_object_get(tc, "function");
            CHECK(json_integer_value(json_object_get(tc, "index")) == n_calls, "tool call index");
            CHECK(json_is_string(json_object_get(tc, "id")), "tool call id");
            CHECK(!strcmp(json_string_value(json_object_get(tc, "type")), "function"), "type");
            CHECK(!strcmp(json_string_value(json_object_get(f, "name")), "get_weather"), "name");
            json_t *args = json_loads(json_string_value(json_object_get(f, "arguments")), 0, NULL);
            CHECK(args && !strcmp(json_string_value(json_object_get(args, "location")), "Beijing"), "string argument");
            CHECK(args && json_integer_value(json_object_get(args, "days")) == 3, "JSON argument");
            json_decref(args);
            n_calls++;
        }
    }
    CHECK(content.data && !strcmp(content.data, "Let me check."), "content '%s'", content.data ? content.data : "");
    CHECK(n_calls == 1, "%d tool calls", n_calls);
    CHECK(finish && !strcmp(finish, "tool_calls"), "finish_reason %s", finish ? finish : "null");
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    strbuf_free(&content);
    strbuf_free(&out);
    srv_stream_free(st);
}

static void test_stream_thinking(void) {
    srv_stream *st = srv_stream_new(SRV_CHAT, V4C_MODE_THINKING, "c", "m", 1, 0);
    strbuf out = {0};
    feed_pieces(st, "Paris is the capital.</think>It is Paris, ünïcode ✓.", &out);
    srv_stream_end(st, 1, EOS, SRV_FINISH_STOP, NULL, 1, 2, 0, &out);
    json_t *ev[256];
    int done, n = events(out.data, ev, 256, &done);
    strbuf r = {0}, c = {0};
    const char *finish = NULL;
    for (int i = 0; i < n; i++) {
        const char *t = delta_str(ev[i], "reasoning_content");
        if (t) strbuf_puts(&r, t);
        if ((t = delta_str(ev[i], "content"))) strbuf_puts(&c, t);
        CHECK(json_array_size(json_object_get(ev[i], "choices")) == 1, "no usage chunk without include_usage");
        json_t *f = json_object_get(json_array_get(json_object_get(ev[i], "choices"), 0), "finish_reason");
        if (json_is_string(f)) finish = json_string_value(f);
    }
    CHECK(done, "[DONE]");
    CHECK(r.data && !strcmp(r.data, "Paris is the capital."), "reasoning '%s'", r.data ? r.data : "");
    CHECK(c.data && !strcmp(c.data, "It is Paris, ünïcode ✓."), "content '%s'", c.data ? c.data : "");
    CHECK(finish && !strcmp(finish, "stop"), "finish stop");
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    strbuf_free(&r);
    strbuf_free(&c);
    strbuf_free(&out);
    srv_stream_free(st);
}

static void test_stream_completion(void) {
    srv_stream *st = srv_stream_new(SRV_COMPLETION, V4C_MODE_CHAT, "cmpl-1", "m", 1, 0);
    strbuf out = {0};
    feed_pieces(st, "once upon a time", &out);
    srv_stream_end(st, 0, EOS, SRV_FINISH_LENGTH, NULL, 3, 4, 0, &out);
    json_t *ev[64];
    int done, n = events(out.data, ev, 64, &done);
    strbuf t = {0};
    for (int i = 0; i < n; i++) {
        json_t *c0 = json_array_get(json_object_get(ev[i], "choices"), 0);
        CHECK(!strcmp(json_string_value(json_object_get(ev[i], "object")), "text_completion"), "object");
        strbuf_puts(&t, json_string_value(json_object_get(c0, "text")));
        if (i == n - 1) CHECK(!strcmp(json_string_value(json_object_get(c0, "finish_reason")), "length"), "finish length");
        else CHECK(json_is_null(json_object_get(c0, "finish_reason")), "finish null before the end");
    }
    CHECK(done && t.data && !strcmp(t.data, "once upon a time"), "text '%s'", t.data ? t.data : "");
    for (int i = 0; i < n; i++) json_decref(ev[i]);
    strbuf_free(&t);
    strbuf_free(&out);
    srv_stream_free(st);

    /* an error mid-stream is an error event, then [DONE] */
    st = srv_stream_new(SRV_COMPLETION, V4C_MODE_CHAT, "cmpl-2", "m", 1, 1);
    strbuf_free(&out);
    srv_stream_end(st, 0, EOS, SRV_FINISH_ERROR, "boom", 3, 0, 0, &out);
    CHECK(strstr(out.data, "\"error\"") && strstr(out.data, "boom") && strstr(out.data, "data: [DONE]\n\n"), "error event: %s", out.data);
    strbuf_free(&out);
    srv_stream_free(st);
}

static void test_whole_response(void) {
    srv_job *j = srv_job_new();
    j->kind = SRV_CHAT;
    j->mode = V4C_MODE_THINKING;
    j->model = strdup("m");
    strcpy(j->id, "chatcmpl-7");
    j->n_prompt = 5, j->n_generated = 9, j->eos = 1;
    const char *t = "hmm</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"search\">\n"
                    "<｜DSML｜parameter name=\"query\" string=\"true\">v4c</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
    srv_job_push_text(j, t, strlen(t));
    srv_job_finish(j, SRV_FINISH_STOP, NULL);
    char *body = srv_response_json(j, EOS);
    json_t *r = json_loads(body, 0, NULL);
    CHECK(r != NULL, "response is JSON");
    json_t *c0 = json_array_get(json_object_get(r, "choices"), 0), *msg = json_object_get(c0, "message");
    CHECK(!strcmp(json_string_value(json_object_get(r, "object")), "chat.completion"), "object");
    CHECK(!strcmp(json_string_value(json_object_get(c0, "finish_reason")), "tool_calls"), "finish_reason");
    CHECK(json_is_null(json_object_get(msg, "content")), "content null with tool calls");
    CHECK(!strcmp(json_string_value(json_object_get(msg, "reasoning_content")), "hmm"), "reasoning");
    json_t *tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(tc, "function"), "name")), "search"), "tool name");
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(tc, "function"), "arguments")), "{\"query\": \"v4c\"}"), "args %s",
          json_string_value(json_object_get(json_object_get(tc, "function"), "arguments")));
    CHECK(json_integer_value(json_object_get(json_object_get(r, "usage"), "total_tokens")) == 14, "usage");
    json_decref(r);
    free(body);
    srv_job_unref(j);

    srv_error e = {.status = 400, .type = "invalid_request_error", .param = "temperature"};
    strcpy(e.message, "bad \"value\"");
    body = srv_error_json(&e);
    r = json_loads(body, 0, NULL);
    json_t *err = json_object_get(r, "error");
    CHECK(err && !strcmp(json_string_value(json_object_get(err, "message")), "bad \"value\""), "error message");
    CHECK(!strcmp(json_string_value(json_object_get(err, "param")), "temperature"), "error param");
    CHECK(json_is_null(json_object_get(err, "code")) && json_is_string(json_object_get(err, "type")), "error code/type");
    json_decref(r);
    free(body);
}

static void test_stop_strings(void) {
    srv_job *j = srv_job_new();
    j->stop[j->n_stop++] = strdup("END");
    j->stop[j->n_stop++] = strdup("zz");
    CHECK(!srv_job_push_text(j, "abcE", 4), "no match yet");
    CHECK(j->safe_len == 3, "held back 'E': safe %zu", j->safe_len);
    CHECK(!srv_job_push_text(j, "N", 1) && j->safe_len == 3, "held back 'EN'");
    CHECK(srv_job_push_text(j, "Dxyz", 4), "matched across pieces");
    CHECK(!strcmp(j->text.data, "abc") && j->finish == SRV_FINISH_STOP, "cut at the stop string: '%s'", j->text.data);
    srv_job_unref(j);
    j = srv_job_new();
    j->stop[j->n_stop++] = strdup("b");
    j->stop[j->n_stop++] = strdup("a");
    CHECK(srv_job_push_text(j, "xxab", 4) && !strcmp(j->text.data, "xx"), "earliest match wins: '%s'", j->text.data);
    srv_job_unref(j);
}

/* Request validation: each bad input is a 4xx naming the parameter. */
static void expect_error(const srv_context *c, srv_kind k, const char *body, int status, const char *param, const char *code) {
    srv_error e = {0};
    srv_job *j = srv_parse_request(c, k, body, strlen(body), &e);
    CHECK(!j, "accepted: %s", body);
    srv_job_unref(j);
    CHECK(e.status == status, "%s: status %d, want %d (%s)", body, e.status, status, e.message);
    CHECK(param ? e.param && !strcmp(e.param, param) : !e.param, "%s: param %s, want %s", body, e.param ? e.param : "null", param ? param : "null");
    if (code) CHECK(e.code && !strcmp(e.code, code), "%s: code %s, want %s", body, e.code ? e.code : "null", code);
    CHECK(e.message[0], "%s: no message", body);
}

static void test_requests(const char *tok_path) {
    char err[V4C_ERR_LEN];
    v4c_tokenizer *tok = v4c_tokenizer_load(tok_path, err);
    CHECK(tok != NULL, "tokenizer: %s", err);
    if (!tok) return;
    v4c_config cfg = {.vocab_size = 129280, .bos_token_id = 0, .eos_token_id = 1};
    srv_context c = {tok, &cfg, "test-model", 64};
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\"", 400, NULL, "invalid_json");
    expect_error(&c, SRV_COMPLETION, "[1, 2]", 400, NULL, NULL);
    expect_error(&c, SRV_COMPLETION, "{}", 400, "prompt", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": 5}", 400, "prompt", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": [1, -2]}", 400, "prompt", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": [1, 999999]}", 400, "prompt", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"model\": \"gpt-4\"}", 404, "model", "model_not_found");
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"model\": 3}", 400, "model", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"temperature\": \"hot\"}", 400, "temperature", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"temperature\": 3}", 400, "temperature", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"top_p\": 0}", 400, "top_p", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"max_tokens\": 1.5}", 400, "max_tokens", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"max_tokens\": 0}", 400, "max_tokens", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"max_tokens\": 100}", 400, "max_tokens", "context_length_exceeded");
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"n\": 2}", 400, "n", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"stream\": \"yes\"}", 400, "stream", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"stop\": [1]}", 400, "stop", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"seed\": \"x\"}", 400, "seed", NULL);
    expect_error(&c, SRV_COMPLETION, "{\"prompt\": \"hi\", \"logprobs\": 5}", 400, "logprobs", NULL);
    char big[1200] = "{\"prompt\": \"";
    for (int i = 0; i < 100; i++) strcat(big, " word");
    strcat(big, "\"}");
    expect_error(&c, SRV_COMPLETION, big, 400, "prompt", "context_length_exceeded");
    expect_error(&c, SRV_CHAT, "{\"messages\": []}", 400, "messages", NULL);
    expect_error(&c, SRV_CHAT, "{\"messages\": [{\"content\": \"x\"}]}", 400, "messages", NULL);
    expect_error(&c, SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": {}}", 400, "tools", NULL);
    expect_error(&c, SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"huge\"}", 400,
                 "reasoning_effort", NULL);
    expect_error(&c, SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"thinking\": 1}", 400, "thinking", NULL);
    expect_error(&c, SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"maybe\"}", 400, "tool_choice", NULL);

    /* a good completion request: BOS + the text's ids, defaults filled in */
    srv_error e = {0};
    const char *ok = "{\"model\": \"test-model\", \"prompt\": \"Hello world\", \"max_tokens\": 5, \"temperature\": 0, \"stop\": \"x\", \"seed\": 9}";
    srv_job *j = srv_parse_request(&c, SRV_COMPLETION, ok, strlen(ok), &e);
    CHECK(j != NULL, "rejected: %s", e.message);
    if (j) {
        int32_t *ids;
        long n = v4c_tokenize(tok, "Hello world", 11, &ids, err);
        CHECK(j->n_prompt == n + 1 && j->prompt[0] == 0 && !memcmp(j->prompt + 1, ids, (size_t)n * 4), "prompt ids");
        CHECK(j->max_tokens == 5 && j->sampling.temperature == 0 && j->sampling.seed == 9 && j->n_stop == 1, "parameters");
        free(ids);
        srv_job_unref(j);
    }
    /* chat: tools reach the prompt (and tool_choice none keeps them out);
     * a leading system message is marked for a prefix snapshot */
    const char *msgs = "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather?\"}]";
    const char *tools = "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}]";
    char body[1024], enc[1024];
    snprintf(body, sizeof body, "{\"messages\": %s, \"tools\": %s, \"reasoning_effort\": \"high\"}", msgs, tools);
    j = srv_parse_request(&c, SRV_CHAT, body, strlen(body), &e);
    CHECK(!j && e.status == 400 && !strcmp(e.code, "context_length_exceeded"), "tools make the prompt longer than 64 tokens");
    srv_job_unref(j);
    c.ctx = 4096;
    j = srv_parse_request(&c, SRV_CHAT, body, strlen(body), &e);
    CHECK(j != NULL, "chat rejected: %s", e.message);
    if (j) {
        snprintf(enc, sizeof enc, "{\"messages\": %s, \"tools\": %s}", msgs, tools);
        v4c_chat_options opt;
        v4c_chat_options_default(&opt);
        opt.thinking_mode = V4C_MODE_THINKING, opt.reasoning_effort = V4C_EFFORT_HIGH;
        int32_t *ids;
        long n = v4c_chat_encode_ids(tok, enc, strlen(enc), &opt, &ids, err);
        CHECK(n > 0 && j->n_prompt == n && !memcmp(j->prompt, ids, (size_t)n * 4), "chat prompt = chat encoding with tools");
        CHECK(j->mode == V4C_MODE_THINKING, "reasoning_effort turns thinking on");
        CHECK(j->snap_at > 0 && j->snap_at < n, "system prefix snapshot at %d of %ld", j->snap_at, n);
        CHECK(j->max_tokens == 4096 - n, "default max_tokens fills the context");
        free(ids);
        srv_job_unref(j);
    }
    snprintf(body, sizeof body, "{\"messages\": %s, \"tools\": %s, \"tool_choice\": \"none\"}", msgs, tools);
    j = srv_parse_request(&c, SRV_CHAT, body, strlen(body), &e);
    if (j) {
        snprintf(enc, sizeof enc, "{\"messages\": %s}", msgs);
        v4c_chat_options opt;
        v4c_chat_options_default(&opt);
        opt.thinking_mode = V4C_MODE_CHAT;
        int32_t *ids;
        long n = v4c_chat_encode_ids(tok, enc, strlen(enc), &opt, &ids, err);
        CHECK(j->n_prompt == n && !memcmp(j->prompt, ids, (size_t)n * 4) && j->mode == V4C_MODE_CHAT, "tool_choice none: no tools (%d vs %ld, mode %d)", j->n_prompt, n, j->mode);
        free(ids);
        srv_job_unref(j);
    } else CHECK(0, "tool_choice none rejected: %s", e.message);
    snprintf(body, sizeof body, "{\"messages\": %s, \"thinking\": {\"type\": \"enabled\"}}", msgs);
    j = srv_parse_request(&c, SRV_CHAT, body, strlen(body), &e);
    CHECK(j && j->mode == V4C_MODE_THINKING, "thinking flag");
    srv_job_unref(j);
    v4c_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_serve_unit TOKENIZER_JSON\n");
        return 2;
    }
    test_stream_tool_call();
    test_stream_thinking();
    test_stream_completion();
    test_whole_response();
    test_stop_strings();
    test_requests(argv[1]);
    return test_done("test_serve_unit");
}
