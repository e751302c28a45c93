/* Text subcommands: tokenize / detokenize JSON lines, render a chat prompt,
 * parse a completion back into an assistant message. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "text/buf.h"
#include "text/json_py.h"
#include "text/utf8.h"
#include "v4c_text.h"

static char *read_all(FILE *f, size_t *len) {
    strbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) strbuf_append(&b, chunk, n);
    return strbuf_take(&b, len);
}

static int parse_mode(const char *s, v4c_thinking_mode *mode) {
    if (s && !strcmp(s, "chat")) *mode = V4C_MODE_CHAT;
    else if (s && !strcmp(s, "thinking")) *mode = V4C_MODE_THINKING;
    else return -1;
    return 0;
}

/* ---- v4c tokenize ------------------------------------------------------------ */

static const char tokenize_usage[] =
    "usage: v4c tokenize -t tokenizer.json [--decode]\n"
    "  stdin: JSON lines {\"text\": \"...\"}; stdout: {\"ids\": [...]} per line (no BOS added).\n"
    "  --decode: {\"ids\": [...]} lines in, {\"text\": \"...\"} lines out.\n"
    "  A bad line (invalid JSON or UTF-8, unknown id) is reported on stderr with its\n"
    "  line number and the exit status is 1 at the end.\n";

static int encode_line(const v4c_tokenizer *tok, json_t *line, strbuf *out, char *err) {
    json_t *text = json_object_get(line, "text");
    if (!json_is_string(text)) {
        snprintf(err, V4C_ERR_LEN, "expected {\"text\": \"...\"}");
        return -1;
    }
    int32_t *ids;
    long n = v4c_tokenize(tok, json_string_value(text), json_string_length(text), &ids, err);
    if (n < 0) return -1;
    strbuf_puts(out, "{\"ids\": [");
    for (long i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, i ? ", %d" : "%d", (int)ids[i]);
        strbuf_puts(out, num);
    }
    strbuf_puts(out, "]}\n");
    free(ids);
    return 0;
}

static int decode_line(const v4c_tokenizer *tok, json_t *line, strbuf *out, char *err) {
    json_t *ids_j = json_object_get(line, "ids");
    if (!json_is_array(ids_j)) {
        snprintf(err, V4C_ERR_LEN, "expected {\"ids\": [...]}");
        return -1;
    }
    size_t n = json_array_size(ids_j);
    int32_t *ids = xmalloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_array_get(ids_j, i);
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX) {
            snprintf(err, V4C_ERR_LEN, "ids[%zu] is not a token id", i);
            free(ids);
            return -1;
        }
        ids[i] = (int32_t)json_integer_value(id);
    }
    size_t len;
    char *bytes = v4c_detokenize(tok, ids, n, &len, err);
    free(ids);
    if (!bytes) return -1;
    /* Ids may split a character; show stray bytes as U+FFFD like HF. */
    strbuf text = {0};
    utf8_append_lossy(&text, bytes, len);
    free(bytes);
    strbuf_puts(out, "{\"text\": ");
    json_py_string(out, text.data ? text.data : "", text.len);
    strbuf_puts(out, "}\n");
    strbuf_free(&text);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    int decode = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--tokenizer")) && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--decode")) decode = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(tokenize_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "v4c tokenize: unknown option '%s'\n%s", argv[i], tokenize_usage);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "v4c tokenize: -t tokenizer.json is required\n%s", tokenize_usage);
        return 2;
    }
    char err[V4C_ERR_LEN];
    v4c_tokenizer *tok = v4c_tokenizer_load(path, err);
    if (!tok) {
        fprintf(stderr, "v4c tokenize: %s\n", err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long line_no = 0, n_failed = 0;
    strbuf out = {0};
    while ((len = getline(&line, &cap, stdin)) > 0) {
        line_no++;
        size_t n = (size_t)len;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        json_error_t jerr;
        json_t *j = json_loadb(line, n, JSON_ALLOW_NUL, &jerr);
        int rc = -1;
        if (!j) snprintf(err, V4C_ERR_LEN, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        else rc = decode ? decode_line(tok, j, &out, err) : encode_line(tok, j, &out, err);
        json_decref(j);
        if (rc) {
            fprintf(stderr, "v4c tokenize: line %ld: %s\n", line_no, err);
            n_failed++;
        }
        if (out.len > (1u << 16) || rc) {
            fwrite(out.data, 1, out.len, stdout);
            out.len = 0;
        }
    }
    if (out.len) fwrite(out.data, 1, out.len, stdout);
    strbuf_free(&out);
    free(line);
    v4c_tokenizer_free(tok);
    if (n_failed) fprintf(stderr, "v4c tokenize: %ld of %ld lines failed\n", n_failed, line_no);
    return n_failed ? 1 : 0;
}

/* ---- v4c chat-template ------------------------------------------------------- */

static const char chat_usage[] =
    "usage: v4c chat-template --thinking-mode chat|thinking [--reasoning-effort high|max]\n"
    "                         [--keep-thinking] [-t tokenizer.json --ids]\n"
    "  stdin: JSON array of OpenAI-format messages (tools on a system/developer message),\n"
    "  or {\"messages\": [...], \"tools\": [...]}. stdout: the prompt, no trailing newline;\n"
    "  with --ids, its token ids as {\"ids\": [...]}.\n";

int cmd_chat_template(int argc, char **argv) {
    v4c_chat_options opt;
    v4c_chat_options_default(&opt);
    int have_mode = 0, want_ids = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--thinking-mode") && next) {
            if (parse_mode(argv[++i], &opt.thinking_mode)) {
                fprintf(stderr, "v4c chat-template: --thinking-mode must be chat or thinking\n");
                return 2;
            }
            have_mode = 1;
        } else if (!strcmp(a, "--reasoning-effort") && next) {
            i++;
            if (!strcmp(next, "high")) opt.reasoning_effort = V4C_EFFORT_HIGH;
            else if (!strcmp(next, "max")) opt.reasoning_effort = V4C_EFFORT_MAX;
            else {
                fprintf(stderr, "v4c chat-template: --reasoning-effort must be high or max\n");
                return 2;
            }
        } else if (!strcmp(a, "--keep-thinking")) opt.drop_thinking = 0;
        else if (!strcmp(a, "--ids")) want_ids = 1;
        else if ((!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) && next) path = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(chat_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "v4c chat-template: unknown option '%s'\n%s", a, chat_usage);
            return 2;
        }
    }
    if (!have_mode || want_ids != (path != NULL)) {
        fprintf(stderr, "v4c chat-template: %s\n%s",
                have_mode ? "--ids and -t go together" : "--thinking-mode is required", chat_usage);
        return 2;
    }
    size_t in_len, out_len;
    char *input = read_all(stdin, &in_len), err[V4C_ERR_LEN];
    int rc = 0;
    if (want_ids) {
        v4c_tokenizer *tok = v4c_tokenizer_load(path, err);
        int32_t *ids = NULL;
        long n = tok ? v4c_chat_encode_ids(tok, input, in_len, &opt, &ids, err) : -1;
        if (n >= 0) {
            printf("{\"ids\": [");
            for (long i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)ids[i]);
            printf("]}\n");
        }
        rc = n < 0;
        free(ids);
        v4c_tokenizer_free(tok);
    } else {
        char *prompt = v4c_chat_encode(input, in_len, &opt, &out_len, err);
        if (prompt) fwrite(prompt, 1, out_len, stdout);
        rc = !prompt;
        free(prompt);
    }
    if (rc) fprintf(stderr, "v4c chat-template: %s\n", err);
    free(input);
    return rc;
}

/* ---- v4c parse-completion ---------------------------------------------------- */

static const char parse_usage[] =
    "usage: v4c parse-completion --thinking-mode chat|thinking\n"
    "  stdin: the completion text (what followed the prompt, through the\n"
    "  end-of-sentence token); stdout: the assistant message as JSON with\n"
    "  content, reasoning_content and tool_calls (arguments as JSON strings).\n";

int cmd_parse_completion(int argc, char **argv) {
    v4c_thinking_mode mode = V4C_MODE_THINKING;
    int have_mode = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--thinking-mode") && i + 1 < argc) {
            if (parse_mode(argv[++i], &mode)) {
                fprintf(stderr, "v4c parse-completion: --thinking-mode must be chat or thinking\n");
                return 2;
            }
            have_mode = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(parse_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "v4c parse-completion: unknown option '%s'\n%s", argv[i], parse_usage);
            return 2;
        }
    }
    if (!have_mode) {
        fprintf(stderr, "v4c parse-completion: --thinking-mode is required\n%s", parse_usage);
        return 2;
    }
    size_t len, out_len;
    char *text = read_all(stdin, &len), err[V4C_ERR_LEN];
    size_t bad = utf8_valid_prefix(text, len);
    char *message = NULL;
    if (bad != len) snprintf(err, V4C_ERR_LEN, "invalid UTF-8 at byte %zu", bad);
    else message = v4c_parse_completion(text, len, mode, &out_len, err);
    if (message) {
        fwrite(message, 1, out_len, stdout);
        fputc('\n', stdout);
    } else
        fprintf(stderr, "v4c parse-completion: %s\n", err);
    free(text);
    free(message);
    return message ? 0 : 1;
}
