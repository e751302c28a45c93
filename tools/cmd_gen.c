/* v4c gen-model: write a random checkpoint in the official layout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "model/generate.h"
#include "v4c.h"

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    if (!b) {
        fprintf(stderr, "v4c: cannot copy %s to %s: %s\n", from, to, strerror(errno));
        if (a) fclose(a);
        return -1;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    return fclose(b) ? -1 : 0;
}

int cmd_gen_model(int argc, char **argv) {
    const char *out = NULL, *preset = "tiny", *tokenizer = NULL, *quant = "fp8";
    int vocab = 0, layers = 0, experts = 0, shards = 0;
    uint64_t seed = 1;
    enum { O_PRESET = 256, O_VOCAB, O_LAYERS, O_EXPERTS, O_QUANT, O_SEED, O_TOK, O_SHARDS };
    static const struct option opts[] = {
        {"preset", required_argument, 0, O_PRESET}, {"vocab", required_argument, 0, O_VOCAB}, {"layers", required_argument, 0, O_LAYERS},
        {"experts", required_argument, 0, O_EXPERTS}, {"quant", required_argument, 0, O_QUANT}, {"seed", required_argument, 0, O_SEED},
        {"tokenizer", required_argument, 0, O_TOK}, {"shards", required_argument, 0, O_SHARDS}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'}, {0}};
    const char *usage = "usage: v4c gen-model [--preset tiny|flash|pro] [--layers N] [--experts N] [--vocab N] [--quant fp8|bf16] [--seed S]\n"
                        "                     [--shards N] [--tokenizer tokenizer.json] -o DIR\n";
    int o;
    while ((o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (o) {
        case O_PRESET: preset = optarg; break;
        case O_VOCAB: vocab = cli_int("--vocab", optarg, 2, 1 << 24); break;
        case O_LAYERS: layers = cli_int("--layers", optarg, 1, 200); break;
        case O_EXPERTS: experts = cli_int("--experts", optarg, 1, 4096); break;
        case O_QUANT: quant = optarg; break;
        case O_SEED: seed = strtoull(optarg, NULL, 10); break;
        case O_TOK: tokenizer = optarg; break;
        case O_SHARDS: shards = cli_int("--shards", optarg, 1, 100000); break;
        case 'o': out = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    v4c_config c;
    if (!out || model_preset(preset, &c) || (strcmp(quant, "fp8") && strcmp(quant, "bf16"))) {
        fprintf(stderr, "v4c gen-model: %s\n%s", !out ? "-o DIR is required" : "unknown --preset or --quant", usage);
        return 2;
    }
    if (vocab) c.vocab_size = vocab;
    if (experts) {
        c.n_routed_experts = experts;
        if (c.n_experts_per_tok > experts) c.n_experts_per_tok = experts;
    }
    if (layers) { /* the preset's first layers (more: its pattern repeats), then its MTP block */
        int mtp_ratio = c.compress_ratios[c.n_layers], period = c.n_layers > 3 ? c.n_layers - 2 : 1;
        for (int l = c.n_layers; l < layers; l++) c.compress_ratios[l] = c.compress_ratios[2 + (l - 2) % period];
        c.n_layers = layers;
        c.compress_ratios[layers] = mtp_ratio;
        if (c.n_hash_layers > layers) c.n_hash_layers = layers;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "v4c: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    char err[V4C_ERR_LEN], path[4096];
    gen_params gp = {.fp8 = !strcmp(quant, "fp8"), .seed = seed, .n_shards = shards};
    if (generate_model(&c, &gp, out, err)) {
        fprintf(stderr, "v4c: %s\n", err);
        return 1;
    }
    if (tokenizer) {
        snprintf(path, sizeof path, "%s/tokenizer.json", out);
        if (copy_file(tokenizer, path)) return 1;
    }
    printf("wrote a random %s model (%d layers, %d experts, vocab %d) to %s\n", quant, c.n_layers, c.n_routed_experts, c.vocab_size, out);
    return 0;
}
