/* Gradient checks in double precision (this file and src/train are built
 * with -DV4C_TRAIN_REAL=double): the analytic gradient of the total loss
 * against central finite differences for every parameter tensor (several
 * elements each, including its largest-gradient one) and the input
 * embedding rows, on tiny configs with CSA (dense and sparse), HCA and
 * window-only layers, hash- and bias-routed MoE, with and without MTP; and
 * the indexer's KL loss against its own parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/model.h"

static v4c_config tiny_config(int with_mtp) {
    v4c_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 40;
    c.hidden_size = 16;
    c.n_layers = 3;
    c.n_mtp = with_mtp;
    c.n_heads = 2;
    c.head_dim = 16;
    c.rope_dim = 8;
    c.q_lora_rank = 12;
    c.o_groups = 2;
    c.o_lora_rank = 6;
    c.window = 5;
    int ratios[4] = {4, 8, 0, 4}; /* CSA (hash-routed), HCA, window only; MTP block CSA */
    memcpy(c.compress_ratios, ratios, sizeof ratios);
    c.index_n_heads = 2;
    c.index_head_dim = 8;
    c.index_topk = 2;
    c.n_routed_experts = 4;
    c.n_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.moe_inter = 8;
    c.n_hash_layers = 1;
    c.route_scale = 1.5f;
    c.swiglu_limit = 1.0f; /* small, so that the clamp is active */
    c.hc_mult = 4;
    c.hc_sinkhorn_iters = 20;
    c.hc_eps = 1e-6f;
    c.rope_theta = 10000;
    c.compress_rope_theta = 160000;
    c.yarn_factor = 4;
    c.yarn_orig_max_pos = 16;
    c.yarn_beta_fast = 32;
    c.yarn_beta_slow = 1;
    c.norm_eps = 1e-6f;
    c.bos_token_id = 0;
    c.eos_token_id = 1;
    return c;
}

static double loss_at(tr_model *m, const tr_opts *o, tr_run *r, const int32_t *tok) {
    tr_forward(m, o, r, tok);
    return tr_loss(m, o, r);
}

/* Central difference of f at params[k] vs grads[k]; returns the error measure. */
static double check_one(tr_model *m, const tr_opts *o, tr_run *r, const int32_t *tok, size_t k, double (*f)(tr_model *, const tr_opts *, tr_run *, const int32_t *)) {
    const double h = 1e-5;
    double w = m->params[k];
    m->params[k] = w + h;
    double lp = f(m, o, r, tok);
    m->params[k] = w - h;
    double lm = f(m, o, r, tok);
    m->params[k] = w;
    double num = (lp - lm) / (2 * h), ana = m->grads[k];
    return fabs(num - ana) / fmax(fabs(num) + fabs(ana), 1e-5); /* below 1e-5 the difference quotient itself is noise */
}

static double kl_only(tr_model *m, const tr_opts *o, tr_run *r, const int32_t *tok) {
    tr_forward(m, o, r, tok);
    tr_loss(m, o, r);
    return o->kl_weight * r->loss_kl;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Checks `per_tensor` random elements and the largest-gradient element of
 * every tensor selected by `indexer_only` (-1: all but the indexer's and the
 * gate bias). Returns the number of failures. */
static int check_model(const char *label, tr_model *m, const tr_opts *o, int B, int T, int indexer_only, double tol) {
    const v4c_config *c = &m->cfg;
    int32_t *tok = malloc((size_t)B * (T + 2) * sizeof(int32_t));
    for (int i = 0; i < B * (T + 2); i++) tok[i] = (int32_t)(next_rand() % (uint64_t)c->vocab_size);
    tr_run r;
    tr_run_init(&r, m, B, T);
    memset(m->grads, 0, m->n_params * sizeof(real));
    double loss = loss_at(m, o, &r, tok);
    tr_backward(m, o, &r);
    double (*f)(tr_model *, const tr_opts *, tr_run *, const int32_t *) = indexer_only ? kl_only : loss_at;
    if (indexer_only) { /* only the KL part: recompute gradients of it alone */
        memset(m->grads, 0, m->n_params * sizeof(real));
        tr_opts ko = *o;
        tr_forward(m, &ko, &r, tok);
        tr_loss(m, &ko, &r);
        tr_backward(m, &ko, &r);
    }
    int fails = 0, checked = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < m->n_info; i++) {
        const param_info *p = &m->info[i];
        if (p->opt == OPT_NONE || (indexer_only ? !p->is_indexer : p->is_indexer)) continue;
        size_t n = (size_t)p->rows * (p->cols ? p->cols : 1), best = 0;
        for (size_t k = 1; k < n; k++)
            if (fabs(m->grads[p->offset + k]) > fabs(m->grads[p->offset + best])) best = k;
        for (int s = 0; s < 4; s++) {
            size_t k = s == 0 ? best : (size_t)(next_rand() % n);
            if (!strcmp(p->name, "embed.weight") && s > 0) k = (size_t)tok[s] * c->hidden_size + next_rand() % (uint64_t)c->hidden_size; /* input rows */
            double e = check_one(m, o, &r, tok, p->offset + k, f);
            checked++;
            if (e > worst) worst = e, worst_name = p->name;
            if (e > tol) {
                fails++;
                fprintf(stderr, "  %s[%zu]: relative error %.3g (analytic %.6g)\n", p->name, k, e, (double)m->grads[p->offset + k]);
            }
        }
    }
    printf("%s: loss %.6f, %d elements checked, worst relative error %.3g (%s) -> %s\n", label, loss, checked, worst, worst_name,
           fails ? "FAIL" : "OK");
    tr_run_free(&r);
    free(tok);
    return fails;
}

int main(void) {
    if (!REAL_IS_DOUBLE) {
        fprintf(stderr, "build with -DV4C_TRAIN_REAL=double\n");
        return 2;
    }
    int fails = 0;
    for (int with_mtp = 1; with_mtp >= 0; with_mtp--) {
        v4c_config c = tiny_config(with_mtp);
        tr_model m;
        tr_model_init(&m, &c);
        tr_model_randomize(&m, 7 + with_mtp);
        /* move off the init values so every path carries gradient */
        for (size_t k = 0; k < m.n_params; k++) m.params[k] += 0.05 * ((double)(next_rand() % 2001) / 1000 - 1);
        tr_opts dense = {.sparse = 0, .mtp_weight = 0.3f, .balance_alpha = 0.01f};
        tr_opts sparse = {.sparse = 1, .mtp_weight = 0.3f, .balance_alpha = 0.01f};
        fails += check_model(with_mtp ? "dense CSA + HCA + window, hash + bias MoE, MTP" : "dense, no MTP", &m, &dense, 2, 20, 0, 1e-4);
        fails += check_model(with_mtp ? "sparse CSA (indexer top-k), MTP" : "sparse CSA, no MTP", &m, &sparse, 2, 20, 0, 1e-4);
        tr_opts kl = {.sparse = 0, .kl_weight = 1};
        fails += check_model("indexer KL warm-up (dense) -> indexer parameters", &m, &kl, 2, 20, 1, 1e-4);
        tr_opts kls = {.sparse = 1, .kl_weight = 1};
        fails += check_model("indexer KL (sparse, selected entries) -> indexer parameters", &m, &kls, 2, 20, 1, 1e-4);
        tr_model_free(&m);
    }
    printf("%s\n", fails ? "FAIL" : "OK");
    return fails != 0;
}
