#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "formats/config.h"
#include "util/util.h"
#include "v4c_text.h"

void train_args_default(train_args *a) {
    memset(a, 0, sizeof *a);
    a->steps = 1000;
    a->batch = 8;
    a->seq = 128;
    a->val_every = 100;
    a->val_batches = 8;
    a->save_every = 0;
    a->seed = 1;
    a->dense_steps = -1; /* 10% of the steps */
    a->quant = 1;
    a->use_muon = 1;
    a->lr = 3e-3f;
    a->warmup = -1; /* 5% of the steps */
    a->mtp_weight = 0.3f;
    a->balance_alpha = 1e-4f;
    a->kl_warmup_weight = 1.0f;
    a->kl_sparse_weight = 0.1f;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* B windows of T+2 ids from ids[lo, hi). */
static void sample_batch(const int32_t *ids, long lo, long hi, int B, int T, uint64_t *s, int32_t *out) {
    for (int b = 0; b < B; b++) {
        long start = lo + (long)(rnd(s) % (uint64_t)(hi - lo - T - 2));
        memcpy(out + (size_t)b * (T + 2), ids + start, (size_t)(T + 2) * sizeof(int32_t));
    }
}

/* Master state for --resume: step, params, both moments (float32/real). */
static int save_state(const tr_model *m, const optimizer *o, const char *dir, char *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/train_state.bin", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return v4c_fail(err, "%s: cannot write", path);
    uint64_t n = m->n_params, hdr[3] = {0x5634435452414e31ULL, n, (uint64_t)o->step};
    int ok = fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(m->params, sizeof(real), n, f) == n && fwrite(o->m, sizeof(real), n, f) == n &&
             fwrite(o->v, sizeof(real), n, f) == n;
    for (int l = 0; ok && l < m->cfg.n_layers; l++)
        if (m->layers[l].tid2eid) ok = fwrite(m->layers[l].tid2eid, sizeof(int32_t), (size_t)m->cfg.vocab_size * m->cfg.n_experts_per_tok, f) > 0;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : v4c_fail(err, "%s: write failed", path);
}

static int load_state(tr_model *m, optimizer *o, const char *dir, char *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/train_state.bin", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return v4c_fail(err, "%s: cannot open (resume needs the directory a previous run wrote)", path);
    uint64_t hdr[3], n = m->n_params;
    int ok = fread(hdr, sizeof hdr, 1, f) == 1 && hdr[0] == 0x5634435452414e31ULL && hdr[1] == n && fread(m->params, sizeof(real), n, f) == n &&
             fread(o->m, sizeof(real), n, f) == n && fread(o->v, sizeof(real), n, f) == n;
    for (int l = 0; ok && l < m->cfg.n_layers; l++)
        if (m->layers[l].tid2eid) {
            size_t k = (size_t)m->cfg.vocab_size * m->cfg.n_experts_per_tok;
            ok = fread(m->layers[l].tid2eid, sizeof(int32_t), k, f) == k;
        }
    fclose(f);
    if (!ok) return v4c_fail(err, "%s: not a state file for this config", path);
    o->step = (int)hdr[2];
    return 0;
}

static int copy_file(const char *from, const char *to, char *err) {
    size_t len;
    char *text = read_file(from, &len, err);
    if (!text) return -1;
    FILE *f = fopen(to, "wb");
    int ok = f && fwrite(text, 1, len, f) == len;
    if (f) ok = (fclose(f) == 0) && ok;
    free(text);
    return ok ? 0 : v4c_fail(err, "%s: cannot write", to);
}

static int checkpoint(const tr_model *m, const optimizer *o, const train_args *a, char *err) {
    char path[4096];
    mkdir(a->out, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", a->out);
    if (tr_model_save(m, a->out, 0, err) || save_state(m, o, a->out, err) || copy_file(a->tokenizer, path, err)) return -1;
    return 0;
}

static void plot(const char *dir) {
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) return;
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"set terminal png size 900,500; set output '%s/loss.png'; set datafile separator ','; set key autotitle columnhead; "
             "set xlabel 'step'; set ylabel 'loss'; plot '%s/log.csv' using 1:3 with lines title 'train (main)', "
             "'' using 1:(\\$6 > 0 ? \\$6 : NaN) with linespoints title 'validation'\" 2>/dev/null",
             dir, dir);
    if (system(cmd) != 0) fprintf(stderr, "gnuplot failed; log.csv is still there\n");
}

int train_run(const train_args *a, char *err) {
    v4c_config cfg;
    if (config_load(&cfg, a->config, err)) return -1;
    v4c_tokenizer *tok = v4c_tokenizer_load(a->tokenizer, err);
    if (!tok) return -1;
    if (v4c_tokenizer_n_vocab(tok) > cfg.vocab_size) {
        v4c_tokenizer_free(tok);
        return v4c_fail(err, "%s: vocab_size %d is smaller than the tokenizer's %d", a->config, cfg.vocab_size, v4c_tokenizer_n_vocab(tok));
    }
    size_t len;
    char *text = read_file(a->data, &len, err);
    int32_t *ids = NULL;
    long n_ids = text ? v4c_tokenize(tok, text, len, &ids, err) : -1;
    free(text);
    v4c_tokenizer_free(tok);
    if (n_ids < 0) return -1;
    long n_val = n_ids / 20, n_train = n_ids - n_val;
    int B = a->batch, T = a->seq;
    if (n_val < T + 3 || n_train < T + 3) {
        free(ids);
        return v4c_fail(err, "%s: %ld tokens is too little for --seq %d", a->data, n_ids, T);
    }
    fprintf(stderr, "data: %ld tokens (%ld train, %ld validation)\n", n_ids, n_train, n_val);

    tr_model m;
    tr_model_init(&m, &cfg);
    tr_model_randomize(&m, (uint64_t)a->seed);
    optim_params op = optim_defaults();
    op.lr = a->lr;
    op.total = a->steps;
    op.warmup = a->warmup >= 0 ? a->warmup : a->steps / 20 + 1;
    op.use_muon = a->use_muon;
    optimizer opt;
    optim_init(&opt, &m, &op);
    if (a->resume && load_state(&m, &opt, a->resume, err)) {
        optim_free(&opt);
        tr_model_free(&m);
        free(ids);
        return -1;
    }
    mkdir(a->out, 0755);
    char path[4096];
    snprintf(path, sizeof path, "%s/log.csv", a->out);
    FILE *csv = fopen(path, opt.step > 0 ? "a" : "w");
    if (!csv) {
        optim_free(&opt);
        tr_model_free(&m);
        free(ids);
        return v4c_fail(err, "%s: cannot write", path);
    }
    if (opt.step == 0) fprintf(csv, "step,loss,main,mtp,lr,val_main,tokens_per_s\n");
    int64_t n_params = 0;
    for (int i = 0; i < m.n_info; i++) n_params += (int64_t)m.info[i].rows * (m.info[i].cols ? m.info[i].cols : 1);
    fprintf(stderr, "model: %lld parameters, optimizer %s, batch %dx%d\n", (long long)n_params, a->use_muon ? "Muon+AdamW" : "AdamW", B, T);

    tr_run run;
    tr_run_init(&run, &m, B, T);
    int32_t *tokens = xmalloc((size_t)B * (T + 2) * sizeof(int32_t));
    uint64_t rs = 0x9E3779B97F4A7C15ULL * (uint64_t)(a->seed + 1) + (uint64_t)opt.step;
    int dense_steps = a->dense_steps >= 0 ? a->dense_steps : a->steps / 10;
    double t_start = now(), tokens_done = 0;
    int rc = 0, first = opt.step;
    for (int step = opt.step; step < a->steps; step++) {
        double t0 = now();
        int dense = step < dense_steps;
        tr_opts o = {.sparse = !dense, .quant = a->quant, .mtp_weight = a->mtp_weight, .balance_alpha = a->balance_alpha,
                     .kl_weight = dense ? a->kl_warmup_weight : a->kl_sparse_weight};
        sample_batch(ids, 0, n_train, B, T, &rs, tokens);
        memset(m.grads, 0, m.n_params * sizeof(real));
        tr_forward(&m, &o, &run, tokens);
        tr_loss(&m, &o, &run);
        tr_backward(&m, &o, &run);
        float lr = optim_lr(&op, opt.step);
        optim_step(&opt, &m);
        moe_bias_update(&m, &run, step < a->steps * 9 / 10 ? op.bias_gamma : 0); /* gamma 0 near the end */
        tokens_done += (double)B * T;
        double dt = now() - t0, rate = tokens_done / (now() - t_start), eta = (a->steps - step - 1) * (now() - t_start) / (step + 1 - first);
        double val = -1;
        if ((a->val_every > 0 && (step + 1) % a->val_every == 0) || step + 1 == a->steps) {
            uint64_t vs = 12345; /* the same validation windows every time */
            tr_opts vo = o;
            vo.kl_weight = 0;
            val = 0;
            for (int k = 0; k < a->val_batches; k++) {
                sample_batch(ids, n_train, n_ids, B, T, &vs, tokens);
                tr_forward(&m, &vo, &run, tokens);
                tr_loss(&m, &vo, &run);
                val += run.loss_main / a->val_batches;
            }
        }
        fprintf(stderr, "step %5d/%d  loss %.4f (main %.4f mtp %.4f kl %.3f)  lr %.2e  %.0f tok/s  %.2fs/step  ETA %.0fs%s", step + 1, a->steps,
                run.loss, run.loss_main, run.loss_mtp, run.loss_kl, lr, rate, dt, eta, val >= 0 ? "" : "\n");
        if (val >= 0) fprintf(stderr, "  val %.4f\n", val);
        fprintf(csv, "%d,%.5f,%.5f,%.5f,%.3g,%.5f,%.0f\n", step + 1, run.loss, run.loss_main, run.loss_mtp, lr, val, rate);
        fflush(csv);
        if ((a->save_every > 0 && (step + 1) % a->save_every == 0) || step + 1 == a->steps) {
            if ((rc = checkpoint(&m, &opt, a, err))) break;
        }
    }
    fclose(csv);
    if (!rc) plot(a->out);
    free(tokens);
    tr_run_free(&run);
    optim_free(&opt);
    tr_model_free(&m);
    free(ids);
    return rc;
}
