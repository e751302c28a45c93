/* v4c run: prefill a prompt and stream a completion. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "v4c.h"

typedef struct {
    v4c_stream_decoder *dec; /* NULL: print ids */
    int n_printed;
} printer;

static int print_token(void *user, int32_t t) {
    printer *p = user;
    if (!p->dec) {
        printf("%s%d", p->n_printed++ ? "," : "", t);
    } else {
        const char *text;
        char err[V4C_ERR_LEN];
        long n = v4c_stream_decoder_push(p->dec, t, &text, err);
        if (n < 0) {
            fprintf(stderr, "v4c: %s\n", err);
            return 1;
        }
        fwrite(text, 1, (size_t)n, stdout);
    }
    fflush(stdout);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: v4c run [-m DIR] (-p TEXT | --prompt-ids IDS) [options]\n"
            "  -m DIR               model directory (default: $V4C_MODEL, else the bundled models/default)\n"
            "  -n N                 generate at most N tokens (default 256)\n"
            "  --temp T             temperature, 0 = greedy (default 0.6)\n"
            "  --top-k K --top-p P --min-p P   filters (default off, 0.95, off)\n"
            "  --repeat-penalty R --presence-penalty P\n"
            "  --seed S             sampling seed (default: from the clock; printed with -v)\n"
            "  --batch N            prefill chunk size (default: whole prompt)\n"
            "  --print-ids          print generated ids, comma-separated, instead of text\n"
            "  --no-mtp             no speculative decoding with the MTP block\n"
            "  --no-bos             do not prepend BOS to -p TEXT\n"
            "  --session FILE       reuse the cached prefix in FILE; save the prompt's cache there\n"
            "  -c N                 context size (default: max_position_embeddings)\n"
            "  -t N                 threads\n  -v                   verbose\n");
}

int cmd_run(int argc, char **argv) {
    const char *dir = NULL, *text = NULL, *ids_arg = NULL, *session_path = NULL;
    int max_tokens = 256, batch = 0, print_ids = 0, no_mtp = 0, no_bos = 0, ctx = 0, verbose = 0, seed_set = 0;
    v4c_sampling sp = v4c_sampling_default();
    sp.temperature = 0.6f;
    sp.top_p = 0.95f;
    enum { O_IDS = 256, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_SEED, O_BATCH, O_PRINT, O_NOMTP, O_NOBOS, O_SESSION, O_REP, O_PRES };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'}, {"prompt-ids", required_argument, 0, O_IDS},
        {"temp", required_argument, 0, O_TEMP}, {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"min-p", required_argument, 0, O_MINP}, {"seed", required_argument, 0, O_SEED}, {"batch", required_argument, 0, O_BATCH},
        {"print-ids", no_argument, 0, O_PRINT}, {"no-mtp", no_argument, 0, O_NOMTP}, {"no-bos", no_argument, 0, O_NOBOS},
        {"session", required_argument, 0, O_SESSION}, {"repeat-penalty", required_argument, 0, O_REP},
        {"presence-penalty", required_argument, 0, O_PRES}, {"threads", required_argument, 0, 't'},
        {"ctx-size", required_argument, 0, 'c'}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0}};
    int o;
    while ((o = getopt_long(argc, argv, "m:p:n:t:c:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'm': dir = optarg; break;
        case 'p': text = optarg; break;
        case O_IDS: ids_arg = optarg; break;
        case 'n': max_tokens = cli_int("-n", optarg, 0, 1 << 30); break;
        case O_TEMP: sp.temperature = cli_float("--temp", optarg, 0, 100); break;
        case O_TOPK: sp.top_k = cli_int("--top-k", optarg, 0, 1 << 30); break;
        case O_TOPP: sp.top_p = cli_float("--top-p", optarg, 0, 1); break;
        case O_MINP: sp.min_p = cli_float("--min-p", optarg, 0, 1); break;
        case O_SEED: sp.seed = (uint64_t)strtoull(optarg, NULL, 10), seed_set = 1; break;
        case O_BATCH: batch = cli_int("--batch", optarg, 1, 1 << 30); break;
        case O_PRINT: print_ids = 1; break;
        case O_NOMTP: no_mtp = 1; break;
        case O_NOBOS: no_bos = 1; break;
        case O_SESSION: session_path = optarg; break;
        case O_REP: sp.repetition_penalty = cli_float("--repeat-penalty", optarg, 0.01f, 100); break;
        case O_PRES: sp.presence_penalty = cli_float("--presence-penalty", optarg, -100, 100); break;
        case 't': v4c_set_threads(cli_int("-t", optarg, 1, 1024)); break;
        case 'c': ctx = cli_int("-c", optarg, 1, 1 << 30); break;
        case 'v': verbose = 1, v4c_set_verbose(1); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir) dir = getenv("V4C_MODEL");
    if (!dir) dir = cli_default_model(); /* the bundled models/default */
    if (!dir || (!text == !ids_arg)) {
        fprintf(stderr, "v4c run: %s\n", !dir ? "no model: pass -m DIR (or set V4C_MODEL; the bundled models/default was not found)" : "give exactly one of -p TEXT and --prompt-ids IDS");
        usage(stderr);
        return 2;
    }
    if (!seed_set) sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

    char err[V4C_ERR_LEN], path[4096];
    int rc = 1;
    int32_t *prompt = NULL;
    long n_prompt = 0;
    v4c_model *m = NULL;
    v4c_tokenizer *tok = NULL;
    v4c_session *s = NULL;
    v4c_sampler *smp = NULL;
    printer pr = {0};
    if (!(m = cli_open_model(dir))) goto done;
    const v4c_config *cfg = v4c_model_config(m);
    if (text || !print_ids) {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        if (!(tok = v4c_tokenizer_load(path, err))) {
            fprintf(stderr, "v4c: %s%s\n", err, text ? "" : " (use --print-ids to print token ids instead of text)");
            goto done;
        }
        if (!print_ids) pr.dec = v4c_stream_decoder_new(tok);
    }
    if (text) {
        int32_t *ids;
        long n = v4c_tokenize(tok, text, strlen(text), &ids, err);
        if (n < 0) {
            fprintf(stderr, "v4c: prompt: %s\n", err);
            goto done;
        }
        int bos = !no_bos && cfg->bos_token_id >= 0;
        prompt = malloc((size_t)(n + bos) * sizeof(int32_t));
        if (bos) prompt[0] = cfg->bos_token_id;
        memcpy(prompt + bos, ids, (size_t)n * sizeof(int32_t));
        free(ids);
        n_prompt = n + bos;
    } else if ((n_prompt = cli_parse_ids(ids_arg, &prompt, "--prompt-ids")) < 0) {
        goto done;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "v4c run: the prompt is empty\n");
        goto done;
    }
    v4c_session_params sparams = {.max_ctx = ctx, .use_mtp = !no_mtp && cfg->n_mtp > 0};
    long reuse = 0;
    if (session_path && access(session_path, F_OK) == 0) {
        if (!(s = v4c_session_load(m, session_path, &sparams, err))) {
            fprintf(stderr, "v4c: %s\n", err);
            goto done;
        }
        long held = v4c_session_pos(s);
        const int32_t *st = v4c_session_tokens(s);
        if (held <= n_prompt && !memcmp(st, prompt, (size_t)held * sizeof(int32_t))) reuse = held;
        else {
            fprintf(stderr, "v4c: %s does not hold a prefix of this prompt; starting fresh\n", session_path);
            v4c_session_reset(s);
        }
        if (verbose) fprintf(stderr, "v4c: reusing %ld cached tokens from %s\n", reuse, session_path);
    } else if (!(s = v4c_session_new(m, &sparams, err))) {
        fprintf(stderr, "v4c: %s\n", err);
        goto done;
    }
    smp = v4c_sampler_new(&sp, cfg->vocab_size);
    v4c_generate_opts go = {.max_tokens = max_tokens, .batch = batch, .use_mtp = sparams.use_mtp, .eos_id = cfg->eos_token_id,
                            .on_token = print_token, .user = &pr};
    v4c_generate_stats st, st_prefill = {0};
    const int32_t *rest = prompt + reuse;
    long n_rest = n_prompt - reuse;
    if (session_path) { /* prefill, save the prompt's cache, then generate */
        v4c_generate_opts pre = go;
        pre.max_tokens = 0;
        if (n_rest > 0 && v4c_generate(s, smp, rest, (int)n_rest, &pre, &st_prefill, err)) {
            fprintf(stderr, "v4c: %s\n", err);
            goto done;
        }
        if (v4c_session_save(s, session_path, err)) {
            fprintf(stderr, "v4c: %s\n", err);
            goto done;
        }
        v4c_sampler_reset(smp);
        rest = NULL;
        n_rest = 0;
    }
    if (verbose) fprintf(stderr, "v4c: seed %llu\n", (unsigned long long)sp.seed);
    if (v4c_generate(s, smp, rest, (int)n_rest, &go, &st, err)) {
        fprintf(stderr, "\nv4c: %s\n", err);
        goto done;
    }
    if (pr.dec) {
        const char *tail;
        long n = v4c_stream_decoder_flush(pr.dec, &tail);
        fwrite(tail, 1, (size_t)n, stdout);
    }
    printf("\n");
    fflush(stdout);
    double pre_s = st.prefill_seconds + st_prefill.prefill_seconds;
    int pre_n = st.prompt_tokens + st_prefill.prompt_tokens;
    fprintf(stderr, "prefill: %d tokens in %.3f s (%.1f tok/s)%s; decode: %d tokens in %.3f s (%.1f tok/s)", pre_n, pre_s,
            pre_s > 0 ? pre_n / pre_s : 0, reuse ? " after reusing a cached prefix" : "", st.generated, st.decode_seconds,
            st.decode_seconds > 0 ? st.generated / st.decode_seconds : 0);
    if (go.use_mtp)
        fprintf(stderr, "; MTP drafts accepted %d/%d (%.0f%%)", st.accepted, st.drafted, st.drafted ? 100.0 * st.accepted / st.drafted : 0);
    fprintf(stderr, "\n");
    rc = 0;
done:
    v4c_sampler_free(smp);
    v4c_session_free(s);
    v4c_stream_decoder_free(pr.dec);
    v4c_tokenizer_free(tok);
    v4c_model_free(m);
    free(prompt);
    return rc;
}
