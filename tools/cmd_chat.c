/* v4c chat: an interactive conversation in the terminal, using the
 * DeepSeek-V4 chat encoding. The cache carries over between turns: only
 * the tokens after the longest cached prefix are prefilled. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "v4c.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct {
    v4c_model *m;
    v4c_tokenizer *tok;
    v4c_session *s, *snapshot; /* snapshot: right after the last prompt's prefill */
    v4c_sampler *smp;
    json_t *messages;
    v4c_chat_options opt;
    const char *system;
    int max_tokens, use_mtp, color, verbose;
    /* per answer */
    v4c_stream_decoder *dec;
    v4c_completion_parser *parser;
    int in_reasoning, parse_failed;
    char *raw;
    size_t raw_len;
} chat;

static void style(chat *c, const char *code) {
    if (c->color) fputs(code, stdout);
}

static int on_token(void *user, int32_t t) {
    chat *c = user;
    const char *text;
    char err[V4C_ERR_LEN];
    long n = v4c_stream_decoder_push(c->dec, t, &text, err);
    if (n <= 0) return n < 0;
    c->raw = realloc(c->raw, c->raw_len + n + 1);
    memcpy(c->raw + c->raw_len, text, n);
    c->raw_len += n;
    c->raw[c->raw_len] = 0;
    if (c->parse_failed) {
        fwrite(text, 1, n, stdout);
    } else {
        v4c_completion_delta d;
        if (v4c_completion_parser_feed(c->parser, text, n, &d, err)) {
            c->parse_failed = 1; /* show the rest as it comes */
            fwrite(text, 1, n, stdout);
        } else {
            if (d.reasoning_len) {
                if (!c->in_reasoning) style(c, "\033[2m");
                c->in_reasoning = 1;
                fwrite(d.reasoning, 1, d.reasoning_len, stdout);
            }
            if (d.content_len || d.n_tool_calls) {
                if (c->in_reasoning) {
                    style(c, "\033[0m");
                    fputs("\n\n", stdout);
                    c->in_reasoning = 0;
                }
                fwrite(d.content, 1, d.content_len, stdout);
                for (int i = 0; i < d.n_tool_calls; i++) printf("\n[tool call] %s(%s)", d.tool_calls[i].name, d.tool_calls[i].arguments);
            }
        }
    }
    fflush(stdout);
    return 0;
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* Bring c->s to a state holding a prefix of ids; returns how many of ids it
 * holds (at most n-1, so at least one token is fed). */
static int reuse_cache(chat *c, const int32_t *ids, int n) {
    char err[V4C_ERR_LEN];
    v4c_session *cands[2] = {c->s, c->snapshot};
    for (int k = 0; k < 2; k++) {
        v4c_session *s = cands[k];
        if (!s) continue;
        int pos = v4c_session_pos(s);
        int lcp = (int)common_prefix(v4c_session_tokens(s), pos, ids, n);
        if (lcp >= n) lcp = n - 1;
        if (pos - lcp > V4C_MAX_ROLLBACK || lcp <= 0) continue;
        if (s == c->snapshot) {
            v4c_session_free(c->s);
            c->s = v4c_session_clone(c->snapshot);
        }
        if (v4c_session_rollback(c->s, pos - lcp, err) == 0) return lcp;
    }
    v4c_session_reset(c->s);
    return 0;
}

static int answer(chat *c) {
    char err[V4C_ERR_LEN];
    char *json = json_dumps(c->messages, 0);
    int32_t *ids = NULL;
    long n = v4c_chat_encode_ids(c->tok, json, strlen(json), &c->opt, &ids, err);
    free(json);
    if (n < 0) {
        fprintf(stderr, "v4c: %s\n", err);
        return -1;
    }
    if (n + 1 >= v4c_session_max_ctx(c->s)) {
        fprintf(stderr, "v4c: the conversation (%ld tokens) no longer fits the context of %d tokens; /clear to start over\n", n,
                v4c_session_max_ctx(c->s));
        free(ids);
        return -1;
    }
    int held = reuse_cache(c, ids, (int)n);
    v4c_generate_opts pre = {.max_tokens = 0, .use_mtp = c->use_mtp, .eos_id = -1};
    v4c_generate_stats st_pre, st;
    v4c_sampler_reset(c->smp);
    if (v4c_generate(c->s, c->smp, ids + held, (int)n - held, &pre, &st_pre, err)) {
        fprintf(stderr, "v4c: %s\n", err);
        free(ids);
        return -1;
    }
    free(ids);
    v4c_session_free(c->snapshot);
    c->snapshot = v4c_session_clone(c->s);

    c->dec = v4c_stream_decoder_new(c->tok);
    c->parser = v4c_completion_parser_new(c->opt.thinking_mode);
    c->in_reasoning = c->parse_failed = 0;
    c->raw_len = 0; /* a Ctrl-C since the input was read (even during prefill) stops the answer */
    const v4c_config *cfg = v4c_model_config(c->m);
    v4c_generate_opts go = {.max_tokens = c->max_tokens, .use_mtp = c->use_mtp, .eos_id = cfg->eos_token_id, .on_token = on_token,
                            .user = c, .interrupt = (volatile int *)&interrupted};
    int rc = v4c_generate(c->s, c->smp, NULL, 0, &go, &st, err);
    if (c->in_reasoning) style(c, "\033[0m");
    printf("\n");
    if (rc) fprintf(stderr, "v4c: %s\n", err);
    if (interrupted) fprintf(stderr, "[stopped]\n");
    if (c->verbose)
        fprintf(stderr, "[%d prompt tokens prefilled (%d cached), %d generated, %.1f tok/s]\n", st_pre.prompt_tokens, held, st.generated,
                st.decode_seconds > 0 ? st.generated / st.decode_seconds : 0);

    /* Record the assistant turn as parsed (reasoning, content, tool calls). */
    json_t *msg = NULL;
    if (!c->parse_failed) {
        char *mj = v4c_completion_parser_message(c->parser, NULL);
        msg = mj ? json_loads(mj, 0, NULL) : NULL;
        free(mj);
    }
    if (!msg) msg = json_pack("{s:s,s:s}", "role", "assistant", "content", c->raw ? c->raw : "");
    json_array_append_new(c->messages, msg);
    v4c_completion_parser_free(c->parser);
    v4c_stream_decoder_free(c->dec);
    c->parser = NULL;
    c->dec = NULL;
    return 0;
}

static void reset_messages(chat *c) {
    json_decref(c->messages);
    c->messages = json_array();
    if (c->system) json_array_append_new(c->messages, json_pack("{s:s,s:s}", "role", "system", "content", c->system));
}

/* One user input: lines ending in '\' continue; a line of """ opens and
 * closes a block. NULL at end of input. Ctrl-C discards the line. */
static char *read_input(chat *c) {
    size_t len = 0;
    char *text = NULL, line[8192];
    int block = 0;
    for (;;) {
        if (isatty(STDIN_FILENO)) {
            style(c, "\033[1m");
            fputs(len || block ? "... " : "> ", stdout);
            style(c, "\033[0m");
            fflush(stdout);
        }
        interrupted = 0;
        if (!fgets(line, sizeof line, stdin)) {
            if (interrupted || errno == EINTR) {
                clearerr(stdin);
                printf("\n");
                len = 0, block = 0;
                continue;
            }
            if (len) return text;
            free(text);
            return NULL;
        }
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        int cont = 0;
        if (!strcmp(line, "\"\"\"")) {
            block = !block;
            if (block) continue;
            n = 0;
        } else if (!block && n && line[n - 1] == '\\') {
            line[--n] = 0;
            cont = 1;
        }
        text = realloc(text, len + n + 2);
        memcpy(text + len, line, n);
        len += n;
        text[len] = 0;
        if (block || cont) {
            text[len++] = '\n';
            text[len] = 0;
            continue;
        }
        if (len && text[len - 1] == '\n') text[--len] = 0;
        return text;
    }
}

static void command(chat *c, const char *line) {
    char err[V4C_ERR_LEN], path[4200];
    const char *arg = strchr(line, ' ');
    while (arg && *arg == ' ') arg++;
    if (!strncmp(line, "/clear", 6)) {
        reset_messages(c);
        v4c_session_reset(c->s);
        v4c_session_free(c->snapshot);
        c->snapshot = NULL;
        printf("(conversation cleared)\n");
    } else if (!strncmp(line, "/save", 5) && arg && *arg) {
        snprintf(path, sizeof path, "%s.json", arg);
        if (v4c_session_save(c->s, arg, err)) fprintf(stderr, "v4c: %s\n", err);
        else if (json_dump_file(c->messages, path, JSON_INDENT(1))) fprintf(stderr, "v4c: %s: cannot write\n", path);
        else printf("(saved %d cached tokens to %s, messages to %s)\n", v4c_session_pos(c->s), arg, path);
    } else if (!strncmp(line, "/load", 5) && arg && *arg) {
        snprintf(path, sizeof path, "%s.json", arg);
        json_error_t jerr;
        json_t *msgs = json_load_file(path, 0, &jerr);
        v4c_session_params p = {.max_ctx = v4c_session_max_ctx(c->s), .use_mtp = c->use_mtp};
        v4c_session *s = msgs && json_is_array(msgs) ? v4c_session_load(c->m, arg, &p, err) : NULL;
        if (!msgs || !json_is_array(msgs)) fprintf(stderr, "v4c: %s: %s\n", path, msgs ? "not a message array" : jerr.text);
        else if (!s) fprintf(stderr, "v4c: %s\n", err);
        else {
            v4c_session_free(c->s);
            v4c_session_free(c->snapshot);
            c->s = s;
            c->snapshot = NULL;
            json_decref(c->messages);
            c->messages = json_incref(msgs);
            printf("(loaded %zu messages, %d cached tokens)\n", json_array_size(msgs), v4c_session_pos(s));
        }
        json_decref(msgs);
    } else {
        printf("commands: /clear, /save FILE, /load FILE, /exit   (end a line with \\ or use \"\"\" for multi-line input)\n");
    }
}

int cmd_chat(int argc, char **argv) {
    const char *dir = NULL;
    chat c = {.max_tokens = 2048, .color = isatty(STDOUT_FILENO)};
    v4c_chat_options_default(&c.opt);
    int ctx = 0, no_mtp = 0, seed_set = 0;
    v4c_sampling sp = v4c_sampling_default();
    sp.temperature = 0.6f;
    sp.top_p = 0.95f;
    enum { O_THINK = 256, O_EFFORT, O_SYSTEM, O_TEMP, O_TOPP, O_SEED, O_NOMTP, O_COLOR };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"thinking", no_argument, 0, O_THINK}, {"reasoning-effort", required_argument, 0, O_EFFORT},
        {"system", required_argument, 0, O_SYSTEM}, {"temp", required_argument, 0, O_TEMP}, {"top-p", required_argument, 0, O_TOPP},
        {"seed", required_argument, 0, O_SEED}, {"no-mtp", no_argument, 0, O_NOMTP}, {"color", required_argument, 0, O_COLOR},
        {"ctx-size", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0}};
    const char *usage = "usage: v4c chat -m DIR [--thinking] [--reasoning-effort high|max] [--system TEXT] [-n N] [--temp T] [--top-p P]\n"
                        "                [--seed S] [--no-mtp] [--color auto|always|never] [-c CTX] [-t THREADS] [-v]\n";
    int o;
    while ((o = getopt_long(argc, argv, "m:n:c:t:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'm': dir = optarg; break;
        case O_THINK: c.opt.thinking_mode = V4C_MODE_THINKING; break;
        case O_EFFORT:
            if (!strcmp(optarg, "max")) c.opt.reasoning_effort = V4C_EFFORT_MAX;
            else if (!strcmp(optarg, "high")) c.opt.reasoning_effort = V4C_EFFORT_HIGH;
            else {
                fprintf(stderr, "v4c chat: --reasoning-effort is high or max\n");
                return 2;
            }
            break;
        case O_SYSTEM: c.system = optarg; break;
        case 'n': c.max_tokens = cli_int("-n", optarg, 1, 1 << 30); break;
        case O_TEMP: sp.temperature = cli_float("--temp", optarg, 0, 100); break;
        case O_TOPP: sp.top_p = cli_float("--top-p", optarg, 0, 1); break;
        case O_SEED: sp.seed = strtoull(optarg, NULL, 10), seed_set = 1; break;
        case O_NOMTP: no_mtp = 1; break;
        case O_COLOR: c.color = !strcmp(optarg, "always") ? 1 : !strcmp(optarg, "never") ? 0 : c.color; break;
        case 'c': ctx = cli_int("-c", optarg, 1, 1 << 30); break;
        case 't': v4c_set_threads(cli_int("-t", optarg, 1, 1024)); break;
        case 'v': c.verbose = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!dir) dir = getenv("V4C_MODEL");
    if (!dir) dir = cli_default_model(); /* the bundled models/default */
    if (!dir) {
        fprintf(stderr, "v4c chat: no model: pass -m DIR (or set V4C_MODEL; the bundled models/default was not found)\n%s", usage);
        return 2;
    }
    if (!seed_set) sp.seed = (uint64_t)time(NULL);
    char err[V4C_ERR_LEN], path[4096];
    int rc = 1;
    if (!(c.m = cli_open_model(dir))) return 1;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (!(c.tok = v4c_tokenizer_load(path, err))) {
        fprintf(stderr, "v4c: %s\n", err);
        goto done;
    }
    const v4c_config *cfg = v4c_model_config(c.m);
    c.use_mtp = !no_mtp && cfg->n_mtp > 0;
    v4c_session_params p = {.max_ctx = ctx, .use_mtp = c.use_mtp};
    if (!(c.s = v4c_session_new(c.m, &p, err))) {
        fprintf(stderr, "v4c: %s\n", err);
        goto done;
    }
    c.smp = v4c_sampler_new(&sp, cfg->vocab_size);
    reset_messages(&c);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C interrupts a read too */
    sigaction(SIGINT, &sa, NULL);
    if (isatty(STDIN_FILENO))
        printf("v4c chat (%s mode) — /clear, /save FILE, /load FILE, /exit; Ctrl-C stops an answer\n",
               c.opt.thinking_mode == V4C_MODE_THINKING ? "thinking" : "chat");
    char *line;
    while ((line = read_input(&c))) {
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) {
            free(line);
            break;
        }
        if (line[0] == '/') command(&c, line);
        else if (line[0]) {
            json_array_append_new(c.messages, json_pack("{s:s,s:s}", "role", "user", "content", line));
            answer(&c);
        }
        free(line);
    }
    rc = 0;
done:
    json_decref(c.messages);
    free(c.raw);
    v4c_sampler_free(c.smp);
    v4c_session_free(c.snapshot);
    v4c_session_free(c.s);
    v4c_tokenizer_free(c.tok);
    v4c_model_free(c.m);
    return rc;
}
