/* Completion parser: the assistant turns inside the golden encodings parse
 * back to the messages they came from; streaming (byte by byte) gives the
 * same result and never releases part of a special token; malformed
 * markup is an error that names a byte offset.
 * usage: test_completion_parse DATA_DIR */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v4c_text.h"
#include "test_util.h"
#include "util/util.h"

#define ASSISTANT "<｜Assistant｜>"
#define EOS "<｜end▁of▁sentence｜>"



static const char *str_or_empty(json_t *v) { return json_is_string(v) ? json_string_value(v) : ""; }

/* Feeds text one byte at a time and checks the deltas add up to the
 * one-shot message; returns the message JSON (caller frees) or NULL. */
static char *parse_streaming(const char *text, size_t len, v4c_thinking_mode mode, char *err) {
    v4c_completion_parser *p = v4c_completion_parser_new(mode);
    size_t cap = len + 1, r_len = 0, c_len = 0;
    char *reasoning = calloc(1, cap), *content = calloc(1, cap);
    int ok = 1;
    for (size_t i = 0; i < len && ok; i++) {
        v4c_completion_delta d;
        if (v4c_completion_parser_feed(p, text + i, 1, &d, err)) ok = 0;
        else {
            memcpy(reasoning + r_len, d.reasoning, d.reasoning_len);
            r_len += d.reasoning_len;
            memcpy(content + c_len, d.content, d.content_len);
            c_len += d.content_len;
        }
    }
    char *message = NULL;
    if (ok && !v4c_completion_parser_finish(p, err)) {
        message = v4c_completion_parser_message(p, NULL);
        json_t *m = json_loads(message, 0, NULL);
        CHECK(m && strlen(str_or_empty(json_object_get(m, "reasoning_content"))) == r_len &&
                  !memcmp(str_or_empty(json_object_get(m, "reasoning_content")), reasoning, r_len),
              "streamed reasoning differs from the message");
        CHECK(m && strlen(str_or_empty(json_object_get(m, "content"))) == c_len &&
                  !memcmp(str_or_empty(json_object_get(m, "content")), content, c_len),
              "streamed content differs from the message");
        json_decref(m);
    }
    free(reasoning);
    free(content);
    v4c_completion_parser_free(p);
    return message;
}

/* Compares a parsed message with the source assistant message. */
static void compare_message(const char *parsed_json, json_t *want, int with_reasoning, const char *where) {
    json_t *got = json_loads(parsed_json, 0, NULL);
    CHECK(got, "%s: parser output is not JSON", where);
    if (!got) return;
    CHECK(!strcmp(str_or_empty(json_object_get(got, "content")), str_or_empty(json_object_get(want, "content"))),
          "%s: content differs", where);
    if (with_reasoning)
        CHECK(!strcmp(str_or_empty(json_object_get(got, "reasoning_content")),
                      str_or_empty(json_object_get(want, "reasoning_content"))),
              "%s: reasoning differs", where);
    json_t *got_calls = json_object_get(got, "tool_calls"), *want_calls = json_object_get(want, "tool_calls");
    CHECK(json_array_size(got_calls) == json_array_size(want_calls), "%s: %zu tool calls, want %zu", where,
          json_array_size(got_calls), json_array_size(want_calls));
    for (size_t i = 0; i < json_array_size(got_calls) && i < json_array_size(want_calls); i++) {
        json_t *g = json_object_get(json_array_get(got_calls, i), "function");
        json_t *w = json_object_get(json_array_get(want_calls, i), "function");
        CHECK(!strcmp(str_or_empty(json_object_get(g, "name")), str_or_empty(json_object_get(w, "name"))),
              "%s: tool call %zu name differs", where, i);
        json_t *ga = json_loads(str_or_empty(json_object_get(g, "arguments")), 0, NULL);
        json_t *wa = json_loads(str_or_empty(json_object_get(w, "arguments")), 0, NULL);
        CHECK(ga && wa && json_equal(ga, wa), "%s: tool call %zu arguments differ: %s", where, i,
              str_or_empty(json_object_get(g, "arguments")));
        json_decref(ga);
        json_decref(wa);
    }
    json_decref(got);
}

/* Every assistant turn of a golden prompt: what follows <｜Assistant｜> and
 * the thinking token (and a task token) up to and including the EOS. */
static void golden_case(const char *dir, int n) {
    char path[1024], where[64], err[V4C_ERR_LEN];
    size_t len;
    snprintf(path, sizeof path, "%s/test_input_%d.json", dir, n);
    json_t *input = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/test_output_%d.txt", dir, n);
    char *prompt = read_file(path, &len, NULL);
    CHECK(input && prompt, "case %d: cannot read inputs", n);
    if (!input || !prompt) return;
    json_t *messages = json_is_object(input) ? json_object_get(input, "messages") : input;
    size_t turn = 0;
    const char *at = prompt;
    for (size_t i = 0; i < json_array_size(messages); i++) {
        json_t *msg = json_array_get(messages, i);
        if (strcmp(str_or_empty(json_object_get(msg, "role")), "assistant")) continue;
        snprintf(where, sizeof where, "case %d turn %zu", n, turn++);
        at = strstr(at, ASSISTANT);
        CHECK(at, "%s: no assistant turn in the prompt", where);
        if (!at) break;
        at += strlen(ASSISTANT);
        int thinking = !strncmp(at, "<think>", 7);
        at += thinking ? 7 : strlen("</think>");
        if (!strncmp(at, "<｜action｜>", strlen("<｜action｜>"))) at += strlen("<｜action｜>");
        const char *end = strstr(at, EOS) + strlen(EOS);
        char *message = v4c_parse_completion(at, (size_t)(end - at), thinking ? V4C_MODE_THINKING : V4C_MODE_CHAT,
                                             NULL, err);
        CHECK(message, "%s: %s", where, err);
        if (message) compare_message(message, msg, thinking, where);
        char *streamed = parse_streaming(at, (size_t)(end - at), thinking ? V4C_MODE_THINKING : V4C_MODE_CHAT, err);
        CHECK(streamed && message && !strcmp(streamed, message), "%s: streaming parse differs", where);
        free(message);
        free(streamed);
        at = end;
    }
    printf("case %d: %zu assistant turns parsed back\n", n, turn);
    free(prompt);
    json_decref(input);
}

static void expect_error(const char *text, v4c_thinking_mode mode, const char *needle) {
    char err[V4C_ERR_LEN] = "";
    char *m = v4c_parse_completion(text, strlen(text), mode, NULL, err);
    CHECK(!m, "accepted malformed completion: %s", text);
    CHECK(strstr(err, needle), "error '%s' does not mention '%s'", err, needle);
    free(m);
    m = parse_streaming(text, strlen(text), mode, err);
    CHECK(!m, "streaming accepted malformed completion: %s", text);
    free(m);
}

static void expect_message(const char *text, v4c_thinking_mode mode, const char *want) {
    char err[V4C_ERR_LEN] = "";
    char *m = v4c_parse_completion(text, strlen(text), mode, NULL, err);
    CHECK(m && !strcmp(m, want), "parse of %s\n  got  %s\n  want %s (%s)", text, m ? m : "NULL", want, err);
    free(m);
    char *s = parse_streaming(text, strlen(text), mode, err);
    CHECK(s && !strcmp(s, want), "streaming parse of %s gave %s", text, s ? s : err);
    free(s);
}

static void unit_cases(void) {
    const char *dsml_call = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n"
                            "<｜DSML｜parameter name=\"q\" string=\"true\">a \"b\"\nc</｜DSML｜parameter>\n"
                            "<｜DSML｜parameter name=\"n\" string=\"false\">[1, 2.5]</｜DSML｜parameter>\n"
                            "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"g\">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
    char text[1024];
    snprintf(text, sizeof text, "think</think>hi%s" EOS, dsml_call);
    expect_message(text, V4C_MODE_THINKING,
                   "{\"role\": \"assistant\", \"content\": \"hi\", \"reasoning_content\": \"think\", \"tool_calls\": "
                   "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{\\\"q\\\": \\\"a "
                   "\\\\\\\"b\\\\\\\"\\\\nc\\\", \\\"n\\\": [1, 2.5]}\"}}, {\"type\": \"function\", \"function\": "
                   "{\"name\": \"g\", \"arguments\": \"{}\"}}]}");
    expect_message("plain <b>text</b> 中文" EOS, V4C_MODE_CHAT,
                   "{\"role\": \"assistant\", \"content\": \"plain <b>text</b> 中文\", \"reasoning_content\": \"\", "
                   "\"tool_calls\": []}");

    expect_error("no end of thinking" EOS, V4C_MODE_THINKING, "byte");
    expect_error("r</think>no eos", V4C_MODE_THINKING, "missing end-of-sentence");
    expect_error("r</think>done" EOS "more", V4C_MODE_THINKING, "after the end of sentence at byte");
    expect_error("a<think>b" EOS, V4C_MODE_CHAT, "at byte 1");
    expect_error("a</think>b" EOS, V4C_MODE_CHAT, "</think>");
    expect_error("a\n<｜DSML｜tool_calls>" EOS, V4C_MODE_CHAT, "｜DSML｜");
    expect_error("x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke nome=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" EOS,
                 V4C_MODE_CHAT, "malformed tool call at byte");
    expect_error("x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" "
                 "string=\"maybe\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" EOS,
                 V4C_MODE_CHAT, "malformed parameter at byte");
    expect_error("x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" "
                 "string=\"true\">1</｜DSML｜parameter>\n<｜DSML｜parameter name=\"a\" "
                 "string=\"true\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" EOS,
                 V4C_MODE_CHAT, "duplicate parameter");
    expect_error("x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>junk" EOS,
                 V4C_MODE_CHAT, "after the tool calls");
    expect_error("x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n", V4C_MODE_CHAT, "unterminated");
    /* Found by fuzzing: a block ending right at a feed boundary, then no EOS. */
    expect_error("x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>"
                 "<｜end▁▁f_sentence｜>",
                 V4C_MODE_CHAT, "after the tool calls");

    /* Held-back text: "</thi" may become </think>, so it is not released. */
    char err[V4C_ERR_LEN];
    v4c_completion_parser *p = v4c_completion_parser_new(V4C_MODE_THINKING);
    v4c_completion_delta d;
    CHECK(!v4c_completion_parser_feed(p, "abc</thi", 8, &d, err), "%s", err);
    CHECK(d.reasoning_len == 3 && !memcmp(d.reasoning, "abc", 3), "released '%.*s'", (int)d.reasoning_len,
          d.reasoning);
    CHECK(!v4c_completion_parser_feed(p, "nk>x<", 5, &d, err), "%s", err);
    CHECK(d.reasoning_len == 0 && d.content_len == 1 && d.content[0] == 'x', "after </think>: content '%.*s'",
          (int)d.content_len, d.content);
    CHECK(!v4c_completion_parser_feed(p, "y" EOS, 1 + strlen(EOS), &d, err), "%s", err);
    CHECK(d.content_len == 2 && !memcmp(d.content, "<y", 2) && d.done, "a lone '<' is released once it is text");
    CHECK(!v4c_completion_parser_finish(p, err), "%s", err);
    v4c_completion_parser_free(p);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    for (int n = 1; n <= 4; n++) golden_case(argv[1], n);
    unit_cases();
    return test_done("test_completion_parse");
}
