/* Completion parser (spec/ENCODING.md, "Parsing a completion"): splits what
 * the model generated after the prompt into reasoning, content and tool
 * calls, incrementally. Text is emitted as soon as it cannot be the start of
 * a special token; malformed markup is an error with its byte offset, never
 * silently dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat_format.h"
#include "text/json_py.h"
#include "text/utf8.h"
#include "v4c_text.h"

#define TOOL_CALLS_START "\n\n<" DSML "tool_calls"
#define TOOL_CALLS_END "</" DSML "tool_calls>"
#define INVOKE_START "<" DSML "invoke"
#define INVOKE_END "</" DSML "invoke"
#define PARAM_START "<" DSML "parameter"
#define PARAM_END "/" DSML "parameter"

typedef enum { IN_REASONING, IN_CONTENT, IN_TOOL_CALLS, AT_END } parse_state;

struct v4c_completion_parser {
    v4c_thinking_mode mode;
    parse_state state;
    strbuf text;      /* everything fed so far */
    size_t scan;        /* start of what is not yet consumed */
    size_t tools_start; /* just after TOOL_CALLS_START */
    strbuf reasoning, content;
    v4c_tool_call *calls;
    int n_calls, n_reported;
    int failed;
};

typedef struct {
    const char *text;
    int is_error; /* seeing it here is malformed */
} marker;

/* Earliest occurrence of any marker in t[from, len): its offset (len if
 * none) and index in *which. */
static size_t find_first(const char *t, size_t len, size_t from, const marker *m, int n, int *which) {
    size_t best = len;
    *which = -1;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(m[i].text), p = from;
        while (p < best && p + k <= len) {
            const char *hit = memchr(t + p, m[i].text[0], best - p);
            if (!hit) break;
            p = (size_t)(hit - t);
            if (p + k > len) break;
            if (!memcmp(t + p, m[i].text, k)) {
                best = p;
                *which = i;
                break;
            }
            p++;
        }
    }
    return best;
}

/* Earliest occurrence of one string, or len. */
static size_t find_str(const char *t, size_t len, size_t from, const char *s) {
    marker m = {s, 0};
    int which;
    return find_first(t, len, from, &m, 1, &which);
}

/* Start of the longest tail of t[from, len) that is a proper prefix of a
 * marker: text from there on may still turn into that marker. */
static size_t marker_hold(const char *t, size_t len, size_t from, const marker *m, int n) {
    size_t longest = 0;
    for (int i = 0; i < n; i++)
        if (strlen(m[i].text) > longest) longest = strlen(m[i].text);
    for (size_t k = len - from < longest ? len - from : longest - 1; k > 0; k--)
        for (int i = 0; i < n; i++)
            if (strlen(m[i].text) > k && !memcmp(t + len - k, m[i].text, k)) return len - k;
    return len;
}

/* Backs `end` off an incomplete trailing UTF-8 sequence. */
static size_t utf8_boundary(const char *t, size_t from, size_t end) {
    for (size_t back = 1; back <= 3 && back <= end - from; back++) {
        const unsigned char *c = (const unsigned char *)t + end - back;
        if ((*c & 0xC0) == 0x80) continue;
        if (utf8_seq_len(c, back) < 0) return end - back;
        break;
    }
    return end;
}

static const marker REASONING_MARKERS[] = {
    {THINK_END, 0}, {TOOL_CALLS_START, 1}, {BOS_TOKEN, 1}, {EOS_TOKEN, 1}, {THINK_START, 1}, {DSML, 1},
};
static const marker CONTENT_MARKERS[] = {
    {EOS_TOKEN, 0}, {TOOL_CALLS_START, 0}, {BOS_TOKEN, 1}, {THINK_START, 1}, {THINK_END, 1}, {DSML, 1},
};

/* ---- tool calls ------------------------------------------------------------ */

typedef struct {
    char *name, *value;
    size_t value_len;
    int is_string;
} parameter;

enum { NEED_MORE = 0, COMPLETE = 1, MALFORMED = -1 };

static void free_params(parameter *params, int n) {
    for (int i = 0; i < n; i++) {
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
}

/* The arguments JSON object, as the reference rebuilds it: string values
 * JSON-quoted, the others inserted as written. */
static char *arguments_json(const parameter *params, int n) {
    strbuf out = {0};
    strbuf_putc(&out, '{');
    for (int i = 0; i < n; i++) {
        if (i) strbuf_puts(&out, ", ");
        json_py_string(&out, params[i].name, strlen(params[i].name));
        strbuf_puts(&out, ": ");
        if (params[i].is_string) json_py_string(&out, params[i].value, params[i].value_len);
        else strbuf_append(&out, params[i].value, params[i].value_len);
    }
    strbuf_putc(&out, '}');
    return strbuf_take(&out, NULL);
}

static int expect_newline(const char *t, size_t from, size_t to, char *err) {
    if (to - from == 2 && !memcmp(t + from, ">\n", 2)) return 0;
    snprintf(err, V4C_ERR_LEN, "malformed tool calls at byte %zu: expected '>\\n'", from);
    return -1;
}

/* `^\s*name="(.*?)">\n$` of the reference; `$` also matches before a final
 * newline, which is what an invoke without parameters looks like. */
static char *invoke_name(const char *h, size_t len) {
    size_t i = 0;
    while (i < len && strchr(" \t\n\r\f\v", h[i])) i++;
    if (len - i < 6 || memcmp(h + i, "name=\"", 6)) return NULL;
    i += 6;
    if (len >= i + 4 && !memcmp(h + len - 4, "\">\n\n", 4)) return xstrndup(h + i, len - 4 - i);
    if (len >= i + 3 && !memcmp(h + len - 3, "\">\n", 3)) return xstrndup(h + i, len - 3 - i);
    return NULL;
}

/* `^ name="(.*?)" string="(true|false)">(.*?)<$`: the name ends at the first
 * `" string="true">` or `" string="false">`; the value runs to the final '<'. */
static int parse_parameter(const char *c, size_t len, parameter *p) {
    if (len < 7 || memcmp(c, " name=\"", 7)) return -1;
    size_t end = len;
    if (end >= 2 && c[end - 1] == '\n' && c[end - 2] == '<') end--;
    if (end == 0 || c[end - 1] != '<') return -1;
    end--;
    for (size_t i = 7; i < len; i++) {
        static const char *const kinds[] = {"\" string=\"true\">", "\" string=\"false\">"};
        for (int k = 0; k < 2; k++) {
            size_t kl = strlen(kinds[k]);
            if (i + kl <= end && !memcmp(c + i, kinds[k], kl)) {
                p->name = xstrndup(c + 7, i - 7);
                p->is_string = k == 0;
                p->value_len = end - (i + kl);
                p->value = xstrndup(c + i + kl, p->value_len);
                return 0;
            }
        }
    }
    return -1;
}

/* Parses the tool-call block from `pos` (just after TOOL_CALLS_START)
 * through the EOS that must follow it. Re-run from the start on every feed;
 * *calls gets every invoke completed so far. */
static int parse_tool_calls(const char *t, size_t len, size_t pos, v4c_tool_call **calls, int *n_calls, size_t *end,
                            char *err) {
    const marker invoke_or_end[] = {{INVOKE_START, 0}, {TOOL_CALLS_END, 0}};
    const marker param_or_end[] = {{PARAM_START, 0}, {INVOKE_END, 0}};
    int which;
    for (;;) {
        size_t p = find_first(t, len, pos, invoke_or_end, 2, &which);
        if (which < 0) return NEED_MORE;
        if (expect_newline(t, pos, p, err)) return MALFORMED;
        pos = p + strlen(invoke_or_end[which].text);
        if (which == 1) break;

        size_t header = pos;
        p = find_first(t, len, pos, param_or_end, 2, &which);
        if (which < 0) return NEED_MORE;
        char *name = invoke_name(t + header, p - header);
        if (!name) {
            snprintf(err, V4C_ERR_LEN, "malformed tool call at byte %zu: expected ' name=\"NAME\">\\n'", header);
            return MALFORMED;
        }
        pos = p + strlen(param_or_end[which].text);
        parameter *params = NULL;
        int n_params = 0, status = COMPLETE;
        while (which == 0) {
            size_t value_end = find_str(t, len, pos, PARAM_END);
            if (value_end == len) {
                status = NEED_MORE;
                break;
            }
            parameter param;
            if (parse_parameter(t + pos, value_end - pos, &param)) {
                snprintf(err, V4C_ERR_LEN,
                         "malformed parameter at byte %zu: expected ' name=\"KEY\" string=\"true|false\">VALUE<'", pos);
                status = MALFORMED;
                break;
            }
            params = xrealloc(params, (size_t)(n_params + 1) * sizeof *params);
            params[n_params++] = param;
            for (int i = 0; i + 1 < n_params; i++)
                if (!strcmp(params[i].name, param.name)) {
                    snprintf(err, V4C_ERR_LEN, "duplicate parameter name '%.100s' at byte %zu", param.name, pos);
                    status = MALFORMED;
                }
            if (status == MALFORMED) break;
            pos = value_end + strlen(PARAM_END);
            p = find_first(t, len, pos, param_or_end, 2, &which);
            if (which < 0) {
                status = NEED_MORE;
                break;
            }
            if (expect_newline(t, pos, p, err)) {
                status = MALFORMED;
                break;
            }
            pos = p + strlen(param_or_end[which].text);
        }
        if (status != COMPLETE) {
            free(name);
            free_params(params, n_params);
            return status;
        }
        *calls = xrealloc(*calls, (size_t)(*n_calls + 1) * sizeof **calls);
        (*calls)[(*n_calls)++] = (v4c_tool_call){name, arguments_json(params, n_params)};
        free_params(params, n_params);
    }
    size_t eos = find_str(t, len, pos, EOS_TOKEN);
    if (eos == len && len - pos < strlen(EOS_TOKEN) && !memcmp(t + pos, EOS_TOKEN, len - pos)) return NEED_MORE;
    if (eos != pos) {
        snprintf(err, V4C_ERR_LEN, "unexpected text after the tool calls at byte %zu (expected end of sentence)", pos);
        return MALFORMED;
    }
    *end = eos + strlen(EOS_TOKEN);
    return COMPLETE;
}

static void free_calls(v4c_tool_call *calls, int n) {
    for (int i = 0; i < n; i++) {
        free(calls[i].name);
        free(calls[i].arguments);
    }
    free(calls);
}

/* ---- the state machine ------------------------------------------------------ */

v4c_completion_parser *v4c_completion_parser_new(v4c_thinking_mode mode) {
    v4c_completion_parser *p = xcalloc(1, sizeof *p);
    p->mode = mode;
    p->state = mode == V4C_MODE_THINKING ? IN_REASONING : IN_CONTENT;
    return p;
}

void v4c_completion_parser_free(v4c_completion_parser *p) {
    if (!p) return;
    strbuf_free(&p->text);
    strbuf_free(&p->reasoning);
    strbuf_free(&p->content);
    free_calls(p->calls, p->n_calls);
    free(p);
}

static int fail(v4c_completion_parser *p) {
    p->failed = 1;
    return -1;
}

/* Consumes text up to the first marker of the current section (or up to
 * what is safe to release). Returns 1 when the state changed, 0 when more
 * input is needed, -1 on malformed text. */
static int step_text(v4c_completion_parser *p, const marker *markers, int n, strbuf *section, char *err) {
    const char *t = p->text.data;
    size_t len = p->text.len;
    int which;
    size_t at = find_first(t, len, p->scan, markers, n, &which);
    size_t hold = marker_hold(t, len, p->scan, markers, n);
    if (which >= 0 && hold < at) which = -1; /* a longer marker may start first */
    if (which >= 0 && markers[which].is_error) {
        const char *shown = markers[which].text + (markers[which].text[0] == '\n' ? 2 : 0);
        snprintf(err, V4C_ERR_LEN, "unexpected '%s' at byte %zu in %s", shown, at,
                 p->state == IN_REASONING ? "the reasoning (missing </think>)" : "the content");
        return -1;
    }
    size_t stop = which >= 0 ? at : utf8_boundary(t, p->scan, hold);
    strbuf_append(section, t + p->scan, stop - p->scan);
    p->scan = stop;
    if (which < 0) return 0;
    p->scan = at + strlen(markers[which].text);
    if (p->state == IN_REASONING) p->state = IN_CONTENT;
    else if (which == 0) p->state = AT_END;
    else {
        p->state = IN_TOOL_CALLS;
        p->tools_start = p->scan;
    }
    return 1;
}

int v4c_completion_parser_feed(v4c_completion_parser *p, const char *text, size_t len, v4c_completion_delta *delta,
                               char *err) {
    *delta = (v4c_completion_delta){0};
    if (p->failed) {
        snprintf(err, V4C_ERR_LEN, "the completion parser already failed");
        return -1;
    }
    strbuf_append(&p->text, text, len);
    size_t r_from = p->reasoning.len, c_from = p->content.len;
    for (;;) {
        int rc = 0;
        if (p->state == IN_REASONING) rc = step_text(p, REASONING_MARKERS, 6, &p->reasoning, err);
        else if (p->state == IN_CONTENT) rc = step_text(p, CONTENT_MARKERS, 6, &p->content, err);
        else if (p->state == IN_TOOL_CALLS) {
            v4c_tool_call *calls = NULL;
            int n_calls = 0;
            size_t end = 0;
            rc = parse_tool_calls(p->text.data, p->text.len, p->tools_start, &calls, &n_calls, &end, err);
            free_calls(p->calls, p->n_calls);
            p->calls = calls;
            p->n_calls = n_calls;
            if (rc == COMPLETE) {
                p->scan = end;
                p->state = AT_END;
            }
        } else if (p->scan < p->text.len) {
            snprintf(err, V4C_ERR_LEN, "unexpected text after the end of sentence at byte %zu", p->scan);
            rc = -1;
        }
        if (rc < 0) return fail(p);
        if (rc == 0) break;
    }
    delta->reasoning = p->reasoning.data ? p->reasoning.data + r_from : "";
    delta->reasoning_len = p->reasoning.len - r_from;
    delta->content = p->content.data ? p->content.data + c_from : "";
    delta->content_len = p->content.len - c_from;
    delta->tool_calls = p->calls + p->n_reported;
    delta->n_tool_calls = p->n_calls - p->n_reported;
    p->n_reported = p->n_calls;
    delta->done = p->state == AT_END;
    return 0;
}

int v4c_completion_parser_finish(v4c_completion_parser *p, char *err) {
    if (p->failed) {
        snprintf(err, V4C_ERR_LEN, "the completion parser already failed");
        return -1;
    }
    switch (p->state) {
    case AT_END: return 0;
    case IN_REASONING: snprintf(err, V4C_ERR_LEN, "missing </think>: the reasoning runs to the end (byte %zu)", p->text.len); break;
    case IN_CONTENT: snprintf(err, V4C_ERR_LEN, "missing end-of-sentence token at byte %zu", p->text.len); break;
    case IN_TOOL_CALLS:
        snprintf(err, V4C_ERR_LEN, "the tool calls starting at byte %zu are unterminated or malformed",
                 p->tools_start - strlen(TOOL_CALLS_START));
        break;
    }
    return fail(p);
}

char *v4c_completion_parser_message(const v4c_completion_parser *p, size_t *len) {
    strbuf out = {0};
    strbuf_puts(&out, "{\"role\": \"assistant\", \"content\": ");
    json_py_string(&out, p->content.data ? p->content.data : "", p->content.len);
    strbuf_puts(&out, ", \"reasoning_content\": ");
    json_py_string(&out, p->reasoning.data ? p->reasoning.data : "", p->reasoning.len);
    strbuf_puts(&out, ", \"tool_calls\": [");
    for (int i = 0; i < p->n_calls; i++) {
        if (i) strbuf_puts(&out, ", ");
        strbuf_puts(&out, "{\"type\": \"function\", \"function\": {\"name\": ");
        json_py_string(&out, p->calls[i].name, strlen(p->calls[i].name));
        strbuf_puts(&out, ", \"arguments\": ");
        json_py_string(&out, p->calls[i].arguments, strlen(p->calls[i].arguments));
        strbuf_puts(&out, "}}");
    }
    strbuf_puts(&out, "]}");
    return strbuf_take(&out, len);
}

char *v4c_parse_completion(const char *text, size_t len, v4c_thinking_mode mode, size_t *out_len, char *err) {
    v4c_completion_parser *p = v4c_completion_parser_new(mode);
    v4c_completion_delta delta;
    char *message = NULL;
    if (!v4c_completion_parser_feed(p, text, len, &delta, err) && !v4c_completion_parser_finish(p, err))
        message = v4c_completion_parser_message(p, out_len);
    v4c_completion_parser_free(p);
    return message;
}
