/* v4c — one binary, one subcommand per job. Each subcommand lives in a
 * tools/cmd_*.c file and is listed in the table below. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"info", cmd_info, "architecture summary, parameter counts, bytes, KV bytes/token"},
    {"logits", cmd_logits, "run a prompt and write float32 logits (golden-check interface)"},
    {"run", cmd_run, "generate a completion (sampling, MTP speculative decoding, saved sessions)"},
    {"bench", cmd_bench, "prefill/decode speed against the machine's measured bandwidth and FMA peak"},
    {"gen-model", cmd_gen_model, "write a random checkpoint in the official layout (tests, benchmarks)"},
    {"chat", cmd_chat, "interactive chat in the terminal (chat encoding, cache reuse between turns)"},
    {"train", cmd_train, "train a model from text (Muon, MTP, balance, indexer warm-up) into an HF checkpoint"},
    {"quantize", cmd_quantize, "BF16 checkpoint -> released format (FP8 e4m3 + ue8m0, FP4 experts)"},
    {"tokenizer-train", cmd_tokenizer_train, "learn a byte-level BPE tokenizer.json (V4 pre-tokenizer, special tokens)"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with continuous batching"},
    /* text commands (tokenizer, chat encoding) */
    {"tokenize", cmd_tokenize, "JSON lines of text -> token ids (or back, --decode)"},
    {"chat-template", cmd_chat_template, "OpenAI-format messages -> DeepSeek-V4 prompt string"},
    {"parse-completion", cmd_parse_completion, "completion text -> assistant message JSON"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: v4c <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-18s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'v4c <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "v4c: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
