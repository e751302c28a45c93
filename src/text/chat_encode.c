/* DeepSeek-V4 chat encoding: OpenAI-format messages → the exact prompt
 * string the model was trained on (spec/ENCODING.md). The steps follow the
 * spec's order: merge tool results into user turns, re-order them by call
 * order, drop old reasoning, then render message by message. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat_format.h"
#include "text/json_py.h"
#include "text/tokenizer_internal.h"

static const char REASONING_EFFORT_MAX[] =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root "
    "cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial "
    "scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, considered "
    "alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

static const char TOOLS_HEAD[] =
    "## Tools\n\n"
    "You have access to a set of tools to help answer the user's question. You can invoke tools by writing a "
    "\"<" DSML "tool_calls>\" block like the following:\n\n"
    "<" DSML "tool_calls>\n"
    "<" DSML "invoke name=\"$TOOL_NAME\">\n"
    "<" DSML "parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</" DSML "parameter>\n"
    "...\n"
    "</" DSML "invoke>\n"
    "<" DSML "invoke name=\"$TOOL_NAME2\">\n"
    "...\n"
    "</" DSML "invoke>\n"
    "</" DSML "tool_calls>\n\n"
    "String parameters should be specified as is and set `string=\"true\"`. For all other types (numbers, "
    "booleans, arrays, objects), pass the value in JSON format and set `string=\"false\"`.\n\n"
    "If thinking_mode is enabled (triggered by " THINK_START "), you MUST output your complete reasoning inside "
    THINK_START "..." THINK_END " BEFORE any tool calls or final response.\n\n"
    "Otherwise, output directly after " THINK_END " with tool calls or final response.\n\n"
    "### Available Tool Schemas\n\n";

static const char TOOLS_TAIL[] =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n";

static const char RESPONSE_FORMAT_HEAD[] =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

static const struct {
    const char *name, *token;
} TASKS[] = {
    {"action", "<｜action｜>"}, {"query", "<｜query｜>"}, {"authority", "<｜authority｜>"},
    {"domain", "<｜domain｜>"}, {"title", "<｜title｜>"}, {"read_url", "<｜read_url｜>"},
};

typedef struct {
    int is_tool_result;
    const json_t *content; /* text: string; tool result: string, parts or null */
    const char *tool_use_id;
} content_block;

/* A message after preprocessing. User turns always carry blocks (their
 * text, then merged tool results and texts), as in the reference. */
typedef struct {
    const char *role;
    const json_t *msg;   /* the source message; NULL for a synthesized user */
    const json_t *tools; /* its tools (or the top-level ones, first message) */
    const json_t *task;  /* NULL when absent or null */
    content_block *blocks;
    size_t n_blocks;
    int drop_reasoning;
} chat_msg;

typedef struct {
    chat_msg *msgs;
    size_t n;
} chat_list;

static void list_free(chat_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->msgs[i].blocks);
    free(l->msgs);
    l->msgs = NULL;
    l->n = 0;
}

static void add_block(chat_msg *m, content_block b) {
    m->blocks = xrealloc(m->blocks, (m->n_blocks + 1) * sizeof *m->blocks);
    m->blocks[m->n_blocks++] = b;
}

static const json_t *non_null(const json_t *v) { return v && !json_is_null(v) ? v : NULL; }

static const json_t *get(const json_t *obj, const char *key) { return json_object_get((json_t *)obj, key); }

/* Message content: a string, null, or OpenAI content parts of type text. */
static int append_content(strbuf *out, const json_t *content, size_t index, char *err) {
    if (!content || json_is_null(content)) return 0;
    if (json_is_string(content)) {
        strbuf_append(out, json_string_value(content), json_string_length(content));
        return 0;
    }
    if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach((json_t *)content, i, part) {
            const char *type = json_string_value(get(part, "type"));
            const json_t *text = get(part, "text");
            if (!type || strcmp(type, "text") || !json_is_string(text)) {
                snprintf(err, V4C_ERR_LEN, "messages[%zu]: content part %zu is not {\"type\": \"text\", \"text\": ...}",
                         index, i);
                return -1;
            }
            strbuf_append(out, json_string_value(text), json_string_length(text));
        }
        return 0;
    }
    snprintf(err, V4C_ERR_LEN, "messages[%zu]: content must be a string, null or a list of text parts", index);
    return -1;
}

/* Preprocessing step 1: tool messages become tool_result blocks of a user
 * turn; consecutive tool results and user texts merge into one turn (a user
 * turn with a task starts a new one). */
static int merge_tool_messages(const json_t *messages, const json_t *top_tools, chat_list *out, char *err) {
    size_t n = json_array_size(messages);
    out->msgs = xcalloc(n ? n : 1, sizeof *out->msgs);
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *msg = json_array_get(messages, i);
        const char *role = json_string_value(get(msg, "role"));
        if (!json_is_object(msg) || !role) {
            snprintf(err, V4C_ERR_LEN, "messages[%zu]: not an object with a string \"role\"", i);
            return -1;
        }
        chat_msg *prev = out->n ? &out->msgs[out->n - 1] : NULL;
        int prev_is_user = prev && !strcmp(prev->role, "user");
        if (!strcmp(role, "tool")) {
            const json_t *id = get(msg, "tool_call_id");
            content_block b = {1, get(msg, "content"), json_is_string(id) ? json_string_value(id) : ""};
            if (prev_is_user) {
                add_block(prev, b);
                continue;
            }
            chat_msg *m = &out->msgs[out->n++];
            *m = (chat_msg){.role = "user"};
            add_block(m, b);
            continue;
        }
        if (!strcmp(role, "user")) {
            content_block b = {0, get(msg, "content"), NULL};
            if (prev_is_user && !prev->task) {
                add_block(prev, b);
                continue;
            }
            chat_msg *m = &out->msgs[out->n++];
            *m = (chat_msg){.role = "user", .msg = msg, .task = non_null(get(msg, "task"))};
            add_block(m, b);
            continue;
        }
        chat_msg *m = &out->msgs[out->n++];
        const json_t *tools = get(msg, "tools");
        if (!tools && i == 0) tools = top_tools;
        *m = (chat_msg){.role = role, .msg = msg, .tools = tools, .task = non_null(get(msg, "task"))};
    }
    return 0;
}

static const char *tool_call_id(const json_t *call) {
    const json_t *id = get(call, "id");
    if (!json_py_truthy(id)) id = get(get(call, "function"), "id");
    return json_is_string(id) && json_string_length(id) ? json_string_value(id) : NULL;
}

/* Position of tool_use_id among the last assistant turn's calls (0 when
 * unknown, as the reference does). */
static size_t call_order(const json_t *calls, const char *tool_use_id) {
    size_t i;
    json_t *call;
    size_t found = 0;
    json_array_foreach((json_t *)calls, i, call) {
        const char *id = tool_call_id(call);
        if (id && tool_use_id && !strcmp(id, tool_use_id)) found = i; /* the last duplicate wins */
    }
    return found;
}

/* Preprocessing step 1b: tool results follow the order of the calls in the
 * preceding assistant turn (stable, other blocks keep their places). */
static void sort_tool_results(chat_list *l) {
    const json_t *calls = NULL;
    for (size_t i = 0; i < l->n; i++) {
        chat_msg *m = &l->msgs[i];
        if (!strcmp(m->role, "assistant") && json_py_truthy(get(m->msg, "tool_calls"))) {
            calls = get(m->msg, "tool_calls");
            int any_id = 0;
            for (size_t k = 0; k < json_array_size(calls); k++) any_id |= tool_call_id(json_array_get(calls, k)) != NULL;
            if (!any_id) calls = NULL;
            continue;
        }
        if (strcmp(m->role, "user") || !calls) continue;
        size_t n_results = 0;
        for (size_t k = 0; k < m->n_blocks; k++) n_results += (size_t)m->blocks[k].is_tool_result;
        if (n_results < 2) continue;
        content_block *sorted = xmalloc(n_results * sizeof *sorted);
        size_t n = 0;
        for (size_t k = 0; k < m->n_blocks; k++) {
            if (!m->blocks[k].is_tool_result) continue;
            content_block b = m->blocks[k];
            size_t key = call_order(calls, b.tool_use_id), j = n++;
            while (j > 0 && call_order(calls, sorted[j - 1].tool_use_id) > key) {
                sorted[j] = sorted[j - 1];
                j--;
            }
            sorted[j] = b;
        }
        for (size_t k = 0, r = 0; k < m->n_blocks; k++)
            if (m->blocks[k].is_tool_result) m->blocks[k] = sorted[r++];
        free(sorted);
    }
}

static long last_user_index(const chat_list *l) {
    for (size_t i = l->n; i-- > 0;)
        if (!strcmp(l->msgs[i].role, "user") || !strcmp(l->msgs[i].role, "developer")) return (long)i;
    return -1;
}

/* Preprocessing step 2 (thinking mode with drop_thinking): before the last
 * user/developer turn, assistant turns lose their reasoning and developer
 * (and any other non-kept) messages go. */
static void drop_thinking(chat_list *l) {
    long last = last_user_index(l);
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        chat_msg m = l->msgs[i];
        const char *keep[] = {"user", "system", "tool", "latest_reminder", "direct_search_results"};
        int keep_role = 0;
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) keep_role |= !strcmp(m.role, keep[k]);
        if (!keep_role && (long)i < last) {
            if (strcmp(m.role, "assistant")) {
                free(m.blocks);
                continue;
            }
            m.drop_reasoning = 1;
        }
        l->msgs[kept++] = m;
    }
    l->n = kept;
}

static int render_tools(strbuf *out, const json_t *tools, size_t index, char *err) {
    if (!json_is_array(tools)) {
        snprintf(err, V4C_ERR_LEN, "messages[%zu]: tools must be a list", index);
        return -1;
    }
    strbuf_puts(out, TOOLS_HEAD);
    size_t i;
    json_t *tool;
    json_array_foreach((json_t *)tools, i, tool) {
        const json_t *function = get(tool, "function");
        if (i) strbuf_putc(out, '\n');
        json_py_dump(out, function ? function : tool);
    }
    strbuf_puts(out, TOOLS_TAIL);
    return 0;
}

/* The sections a system or developer message carries after its content. */
static int render_sections(strbuf *out, const chat_msg *m, size_t index, char *err) {
    if (json_py_truthy(m->tools)) {
        strbuf_puts(out, "\n\n");
        if (render_tools(out, m->tools, index, err)) return -1;
    }
    const json_t *format = get(m->msg, "response_format");
    if (json_py_truthy(format)) {
        strbuf_puts(out, "\n\n");
        strbuf_puts(out, RESPONSE_FORMAT_HEAD);
        json_py_dump(out, format);
    }
    return 0;
}

static void render_parameter(strbuf *out, const char *key, const json_t *value) {
    strbuf_puts(out, "<" DSML "parameter name=\"");
    strbuf_puts(out, key);
    if (json_is_string(value)) {
        strbuf_puts(out, "\" string=\"true\">");
        strbuf_append(out, json_string_value(value), json_string_length(value));
    } else {
        strbuf_puts(out, "\" string=\"false\">");
        json_py_dump(out, value);
    }
    strbuf_puts(out, "</" DSML "parameter>");
}

/* Arguments that parse as a JSON object become one parameter per key; any
 * other arguments become a single parameter named "arguments". */
static void render_arguments(strbuf *out, const json_t *arguments) {
    json_t *parsed = NULL;
    const json_t *object = json_is_object(arguments) ? arguments : NULL;
    if (json_is_string(arguments)) {
        json_error_t jerr;
        parsed = json_loadb(json_string_value(arguments), json_string_length(arguments),
                            JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (json_is_object(parsed)) object = parsed;
    }
    if (object) {
        const char *key;
        json_t *value;
        int first = 1;
        json_object_foreach((json_t *)object, key, value) {
            if (!first) strbuf_putc(out, '\n');
            first = 0;
            render_parameter(out, key, value);
        }
    } else {
        render_parameter(out, "arguments", arguments);
    }
    json_decref(parsed);
}

static int render_tool_calls(strbuf *out, const json_t *calls, size_t index, char *err) {
    if (!json_is_array(calls)) {
        snprintf(err, V4C_ERR_LEN, "messages[%zu]: tool_calls must be a list", index);
        return -1;
    }
    strbuf_puts(out, "\n\n<" DSML "tool_calls>\n");
    size_t i;
    json_t *call;
    json_array_foreach((json_t *)calls, i, call) {
        const json_t *function = get(call, "function");
        const json_t *name = get(function, "name"), *arguments = get(function, "arguments");
        if (!json_is_string(name) || !arguments) {
            snprintf(err, V4C_ERR_LEN, "messages[%zu].tool_calls[%zu]: needs function.name and function.arguments",
                     index, i);
            return -1;
        }
        if (i) strbuf_putc(out, '\n');
        strbuf_puts(out, "<" DSML "invoke name=\"");
        strbuf_puts(out, json_string_value(name));
        strbuf_puts(out, "\">\n");
        render_arguments(out, arguments);
        strbuf_puts(out, "\n</" DSML "invoke>");
    }
    strbuf_puts(out, "\n</" DSML "tool_calls>");
    return 0;
}

static int render_user_blocks(strbuf *out, const chat_msg *m, size_t index, char *err) {
    for (size_t k = 0; k < m->n_blocks; k++) {
        const content_block *b = &m->blocks[k];
        if (k) strbuf_puts(out, "\n\n");
        if (!b->is_tool_result) {
            if (append_content(out, b->content, index, err)) return -1;
            continue;
        }
        strbuf_puts(out, "<tool_result>");
        if (json_is_array(b->content)) {
            /* Multi-part tool output: text parts joined by a blank line. */
            size_t i;
            json_t *part;
            json_array_foreach((json_t *)b->content, i, part) {
                const char *type = json_string_value(get(part, "type"));
                if (i) strbuf_puts(out, "\n\n");
                if (type && !strcmp(type, "text")) {
                    const json_t *text = get(part, "text");
                    strbuf_append(out, json_string_value(text) ? json_string_value(text) : "",
                                    json_string_length(text));
                } else {
                    strbuf_puts(out, "[Unsupported ");
                    strbuf_puts(out, type ? type : "None");
                    strbuf_puts(out, "]");
                }
            }
        } else if (json_is_string(b->content) || !b->content || json_is_null(b->content)) {
            append_content(out, b->content, index, err);
        } else {
            json_py_dump(out, b->content);
        }
        strbuf_puts(out, "</tool_result>");
    }
    return 0;
}

static int render_assistant(strbuf *out, const chat_list *l, size_t index, const v4c_chat_options *opt,
                            int drop, long last_user, char *err) {
    const chat_msg *m = &l->msgs[index];
    int prev_has_task = index > 0 && l->msgs[index - 1].task != NULL;
    if (opt->thinking_mode == V4C_MODE_THINKING && !prev_has_task && (!drop || (long)index > last_user)) {
        if (!m->drop_reasoning && append_content(out, get(m->msg, "reasoning_content"), index, err)) return -1;
        strbuf_puts(out, THINK_END);
    }
    if (append_content(out, get(m->msg, "content"), index, err)) return -1;
    const json_t *calls = get(m->msg, "tool_calls");
    if (json_py_truthy(calls) && render_tool_calls(out, calls, index, err)) return -1;
    if (!json_py_truthy(get(m->msg, "wo_eos"))) strbuf_puts(out, EOS_TOKEN);
    return 0;
}

/* What opens the next assistant turn after message `index`, if it is the
 * last message or is followed by an assistant/latest_reminder message. */
static int render_transition(strbuf *out, const chat_list *l, size_t index, const v4c_chat_options *opt,
                             int drop, long last_user, char *err) {
    const chat_msg *m = &l->msgs[index];
    if (index + 1 < l->n) {
        const char *next = l->msgs[index + 1].role;
        if (strcmp(next, "assistant") && strcmp(next, "latest_reminder")) return 0;
    }
    int thinking = opt->thinking_mode == V4C_MODE_THINKING;
    if (m->task) {
        const char *task = json_string_value(m->task), *token = NULL;
        for (size_t k = 0; task && k < sizeof TASKS / sizeof TASKS[0]; k++)
            if (!strcmp(task, TASKS[k].name)) token = TASKS[k].token;
        if (!token) {
            snprintf(err, V4C_ERR_LEN,
                     "messages[%zu]: invalid task (valid: action, query, authority, domain, title, read_url)", index);
            return -1;
        }
        if (!strcmp(task, "action")) {
            strbuf_puts(out, ASSISTANT_TOKEN);
            strbuf_puts(out, thinking ? THINK_START : THINK_END);
        }
        strbuf_puts(out, token);
        return 0;
    }
    if (strcmp(m->role, "user") && strcmp(m->role, "developer")) return 0;
    strbuf_puts(out, ASSISTANT_TOKEN);
    int open_thinking = thinking && (!drop || (long)index >= last_user);
    strbuf_puts(out, open_thinking ? THINK_START : THINK_END);
    return 0;
}

static int render_message(strbuf *out, const chat_list *l, size_t index, const v4c_chat_options *opt, int drop,
                          long last_user, char *err) {
    const chat_msg *m = &l->msgs[index];
    if (index == 0 && opt->thinking_mode == V4C_MODE_THINKING && opt->reasoning_effort == V4C_EFFORT_MAX)
        strbuf_puts(out, REASONING_EFFORT_MAX);
    const json_t *content = m->msg ? get(m->msg, "content") : NULL;
    if (!strcmp(m->role, "system")) {
        if (append_content(out, content, index, err) || render_sections(out, m, index, err)) return -1;
    } else if (!strcmp(m->role, "developer")) {
        if (!json_py_truthy(content)) {
            snprintf(err, V4C_ERR_LEN, "messages[%zu]: a developer message needs content", index);
            return -1;
        }
        strbuf_puts(out, USER_TOKEN);
        if (append_content(out, content, index, err) || render_sections(out, m, index, err)) return -1;
    } else if (!strcmp(m->role, "user")) {
        strbuf_puts(out, USER_TOKEN);
        if (render_user_blocks(out, m, index, err)) return -1;
    } else if (!strcmp(m->role, "latest_reminder")) {
        strbuf_puts(out, LATEST_REMINDER_TOKEN);
        if (append_content(out, content, index, err)) return -1;
    } else if (!strcmp(m->role, "assistant")) {
        if (render_assistant(out, l, index, opt, drop, last_user, err)) return -1;
    } else {
        snprintf(err, V4C_ERR_LEN, "messages[%zu]: unknown role '%.40s'", index, m->role);
        return -1;
    }
    return render_transition(out, l, index, opt, drop, last_user, err);
}

void v4c_chat_options_default(v4c_chat_options *opt) {
    *opt = (v4c_chat_options){.thinking_mode = V4C_MODE_THINKING, .drop_thinking = 1, .add_bos = 1};
}

char *v4c_chat_encode_json(const json_t *input, const v4c_chat_options *opt, size_t *len, char *err) {
    const json_t *messages = input, *top_tools = NULL;
    if (json_is_object(input)) {
        messages = get(input, "messages");
        top_tools = get(input, "tools");
    }
    if (!json_is_array(messages)) {
        snprintf(err, V4C_ERR_LEN, "chat input must be a list of messages or {\"messages\": [...]}");
        return NULL;
    }
    chat_list l = {0};
    if (merge_tool_messages(messages, top_tools, &l, err)) {
        list_free(&l);
        return NULL;
    }
    sort_tool_results(&l);

    /* Tools anywhere force drop_thinking off (spec: Modes). */
    int drop = opt->drop_thinking;
    for (size_t i = 0; i < l.n; i++)
        if (json_py_truthy(l.msgs[i].tools)) drop = 0;
    if (opt->thinking_mode == V4C_MODE_THINKING && drop) drop_thinking(&l);
    long last_user = last_user_index(&l);

    strbuf out = {0};
    if (opt->add_bos) strbuf_puts(&out, BOS_TOKEN);
    for (size_t i = 0; i < l.n; i++)
        if (render_message(&out, &l, i, opt, drop, last_user, err)) {
            strbuf_free(&out);
            list_free(&l);
            return NULL;
        }
    list_free(&l);
    return strbuf_take(&out, len);
}

char *v4c_chat_encode(const char *json, size_t json_len, const v4c_chat_options *opt, size_t *len, char *err) {
    json_error_t jerr;
    json_t *root = json_loadb(json, json_len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        snprintf(err, V4C_ERR_LEN, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    char *prompt = v4c_chat_encode_json(root, opt, len, err);
    json_decref(root);
    return prompt;
}

/* The format's special tokens, which must be single tokens to mean what the
 * model learned; a tokenizer without one still encodes (as plain text). */
static void warn_missing_specials(const v4c_tokenizer *tok, const char *prompt) {
    static const char *const specials[] = {
        BOS_TOKEN,   EOS_TOKEN,           USER_TOKEN,         ASSISTANT_TOKEN, LATEST_REMINDER_TOKEN,
        THINK_START, THINK_END,           DSML,               "<｜action｜>",   "<｜query｜>",
        "<｜authority｜>", "<｜domain｜>", "<｜title｜>",       "<｜read_url｜>",
    };
    strbuf missing = {0};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        if (v4c_tokenizer_token_id(tok, specials[i]) < 0 && strstr(prompt, specials[i])) {
            strbuf_puts(&missing, missing.len ? ", " : "");
            strbuf_puts(&missing, specials[i]);
        }
    if (missing.len && !atomic_exchange(&((v4c_tokenizer *)tok)->warned_missing_specials, 1))
        fprintf(stderr, "v4c: warning: the tokenizer has no single token for %s; encoding them as text\n",
                missing.data);
    strbuf_free(&missing);
}

long v4c_chat_encode_ids(const v4c_tokenizer *tok, const char *json, size_t json_len, const v4c_chat_options *opt,
                         int32_t **ids, char *err) {
    size_t len;
    char *prompt = v4c_chat_encode(json, json_len, opt, &len, err);
    if (!prompt) return -1;
    warn_missing_specials(tok, prompt);
    long n = v4c_tokenize(tok, prompt, len, ids, err);
    free(prompt);
    return n;
}
