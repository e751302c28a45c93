/* Training commands: `v4c train`, `v4c quantize`, `v4c tokenizer-train`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "formats/config.h"
#include "train/bpe_train.h"
#include "train/trainer.h"

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: v4c train --config CFG.json --data corpus.txt --tokenizer T.json -o DIR [options]\n"
            "  --steps N        optimizer steps (1000)\n"
            "  --batch B        sequences per step (8)\n"
            "  --seq S          positions per sequence (128)\n"
            "  --lr LR          peak learning rate (3e-3), warm-up then cosine to LR/10\n"
            "  --warmup N       warm-up steps (5%% of --steps)\n"
            "  --dense-steps N  CSA dense stage + indexer KL warm-up (10%% of --steps), then sparse top-k\n"
            "  --val-every K    validation loss every K steps (100)\n"
            "  --save-every K   checkpoint every K steps (0: at the end)\n"
            "  --optimizer muon|adamw  Muon for matrices + AdamW (default) or AdamW for all\n"
            "  --no-quant       no simulated activation quantization\n"
            "  --seed N         initialisation and data order (1)\n"
            "  --resume DIR     continue from DIR's train_state.bin\n"
            "Writes DIR/config.json, model.safetensors (BF16, official names), tokenizer.json,\n"
            "train_state.bin (float32 master weights + optimizer), log.csv and loss.png (gnuplot).\n");
}

int cmd_train(int argc, char **argv) {
    train_args a;
    train_args_default(&a);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) return train_usage(stdout), 0;
        if (!v) return fprintf(stderr, "v4c train: %s needs a value\n", o), 2;
        i++;
        if (!strcmp(o, "--config")) a.config = v;
        else if (!strcmp(o, "--data")) a.data = v;
        else if (!strcmp(o, "--tokenizer")) a.tokenizer = v;
        else if (!strcmp(o, "-o")) a.out = v;
        else if (!strcmp(o, "--resume")) a.resume = v;
        else if (!strcmp(o, "--steps")) a.steps = cli_int(o, v, 1, 100000000);
        else if (!strcmp(o, "--batch")) a.batch = cli_int(o, v, 1, 4096);
        else if (!strcmp(o, "--seq")) a.seq = cli_int(o, v, 4, 1 << 16);
        else if (!strcmp(o, "--lr")) a.lr = cli_float(o, v, 0, 10);
        else if (!strcmp(o, "--warmup")) a.warmup = cli_int(o, v, 0, 100000000);
        else if (!strcmp(o, "--dense-steps")) a.dense_steps = cli_int(o, v, 0, 100000000);
        else if (!strcmp(o, "--val-every")) a.val_every = cli_int(o, v, 0, 100000000);
        else if (!strcmp(o, "--save-every")) a.save_every = cli_int(o, v, 0, 100000000);
        else if (!strcmp(o, "--seed")) a.seed = cli_int(o, v, 0, 1 << 30);
        else if (!strcmp(o, "--optimizer")) {
            if (strcmp(v, "muon") && strcmp(v, "adamw")) return fprintf(stderr, "v4c train: --optimizer muon|adamw\n"), 2;
            a.use_muon = !strcmp(v, "muon");
        } else if (!strcmp(o, "--no-quant")) {
            a.quant = 0;
            i--;
        } else return fprintf(stderr, "v4c train: unknown option %s\n", o), train_usage(stderr), 2;
    }
    if (!a.config || !a.data || !a.tokenizer || !a.out) return train_usage(stderr), 2;
    char err[V4C_ERR_LEN];
    if (train_run(&a, err)) return fprintf(stderr, "v4c train: %s\n", err), 1;
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-m")) in = argv[i + 1];
        else if (!strcmp(argv[i], "-o")) out = argv[i + 1];
    }
    if (!in || !out) {
        fprintf(stderr, "usage: v4c quantize -m BF16_DIR -o OUT_DIR\n"
                        "  converts a BF16 checkpoint to the released format: FP8 e4m3 + ue8m0 128x128 block scales,\n"
                        "  FP4 e2m1 routed experts (ue8m0 per 32); copies tokenizer.json when present\n");
        return 2;
    }
    char err[V4C_ERR_LEN], path[4096];
    v4c_config cfg;
    snprintf(path, sizeof path, "%s/config.json", in);
    if (config_load(&cfg, path, err)) return fprintf(stderr, "v4c quantize: %s\n", err), 1;
    tr_model m;
    tr_model_init(&m, &cfg);
    mkdir(out, 0755);
    int rc = tr_model_load(&m, in, err) || tr_model_save(&m, out, 1, err);
    tr_model_free(&m);
    if (rc) return fprintf(stderr, "v4c quantize: %s\n", err), 1;
    snprintf(path, sizeof path, "%s/tokenizer.json", in);
    FILE *f = fopen(path, "rb");
    if (f) {
        char dst[4096];
        snprintf(dst, sizeof dst, "%s/tokenizer.json", out);
        FILE *g = fopen(dst, "wb");
        char buf[65536];
        size_t n;
        while (g && (n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, g);
        if (g) fclose(g);
        fclose(f);
    }
    return 0;
}

int cmd_tokenizer_train(int argc, char **argv) {
    const char *corpus = NULL, *out = NULL;
    int vocab = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = cli_int("--vocab", argv[++i], 300, 1 << 20);
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else corpus = argv[i];
    }
    if (!corpus || !out) {
        fprintf(stderr, "usage: v4c tokenizer-train --vocab N corpus.txt -o tokenizer.json\n");
        return 2;
    }
    char err[V4C_ERR_LEN];
    if (bpe_train(corpus, vocab, out, err)) return fprintf(stderr, "v4c tokenizer-train: %s\n", err), 1;
    return 0;
}
