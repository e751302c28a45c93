/* The training loop behind `v4c train`: data, steps, validation, logs,
 * checkpoints in the official HF layout (BF16) plus the float32 master
 * state for --resume. */
#ifndef V4C_TRAINER_H
#define V4C_TRAINER_H

#include "train/optim.h"

typedef struct {
    const char *config, *data, *tokenizer, *out, *resume;
    int steps, batch, seq, val_every, val_batches, save_every, seed;
    int dense_steps;   /* CSA dense stage + indexer KL warm-up (then sparse top-k) */
    int quant;         /* straight-through activation quantization */
    int use_muon;
    float lr;
    int warmup;
    float mtp_weight, balance_alpha, kl_warmup_weight, kl_sparse_weight;
} train_args;

void train_args_default(train_args *a);
int train_run(const train_args *a, char *err);

#endif
