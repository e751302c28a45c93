/* The training forward and backward of the whole model (MODEL.md) over a
 * batch of B whole sequences of T positions, keeping what backward needs. */
#ifndef V4C_TRAIN_MODEL_H
#define V4C_TRAIN_MODEL_H

#include "train/hc.h"
#include "train/params.h"

typedef struct {
    int sparse;          /* CSA attends to the indexer's top-k (else every visible entry: the dense stage) */
    int quant;           /* simulate the model's activation quantization (straight-through gradients) */
    float mtp_weight;    /* lambda of L_main + lambda * L_mtp */
    float balance_alpha; /* sequence-wise balance loss weight */
    float kl_weight;     /* lightning-indexer KL loss weight (0: off) */
} tr_opts;

typedef struct {
    real *K, *S;          /* [N, c*d] */
    real *pool, *rstd;    /* [B*nb, d] pooled (pre-norm), [B*nb] */
    real *ent;            /* [B*nb, d] final entries */
} comp_acts;

typedef struct {
    real *qlat_raw, *qlat_rstd, *qlat, *q_raw, *q_rstd, *q, *kv_raw, *kv_rstd, *kv, *o, *u;
    comp_acts comp, icomp;
    real *qI, *wts; /* indexer queries (final) and head weights */
    int *sel, *n_sel;
    real *mass;     /* [N, nb] main-attention mass on each compressed entry (KL target) */
    double kl;      /* indexer KL loss (sum over rows) */
    int kl_rows;
} attn_acts;

typedef struct {
    real *s_raw, *s;      /* [N, E] router logits, scores */
    int *idx;             /* [N, K] */
    real *g;              /* [N, K] routing weights */
    int *by_expert;       /* [N*K] assignment t*K+k, grouped by expert */
    int *expert_start;    /* [E+1] */
    real *h1, *h3;        /* [N*K, inter] in by_expert order */
    real *sh1, *sh3;      /* [N, shared inter] */
    int *load;            /* [E] tokens routed to each expert (this batch) */
    double balance;       /* balance loss (already weighted by alpha, summed over sequences) */
} moe_acts;

typedef struct {
    real *Xa, *Xf, *Xo; /* streams entering attention, entering the FFN, leaving [N, hc*D] */
    hc_acts hca, hcf;
    real *ya, *ya_rstd, *xa, *attn_out; /* attention sublayer: hc_pre y, its norm, output */
    real *yf, *yf_rstd, *xf, *ffn_out;
    attn_acts attn;
    moe_acts moe;
} layer_acts;

typedef struct {
    real *X;                 /* [N, hc*D] final streams */
    hc_acts hc;
    real *y, *rstd, *yn;     /* head input */
    real *logits;            /* [N, V] (probabilities after the loss) */
} head_acts;

typedef struct {
    int B, T, N;
    int *ids, *targets, *mtp_ids, *mtp_targets; /* [N] */
    real *X0;                /* embedded streams */
    layer_acts *layers;      /* n_layers + n_mtp */
    head_acts head, mtp_head;
    /* MTP input */
    real *e, *e_rstd, *en, *ep, *hn, *hn_rstd, *Xm0;
    double loss_main, loss_mtp, loss_balance, loss_kl, loss;
    int has_mtp;
    void **owned;
    int n_owned;
} tr_run;

/* Allocate activations for B sequences of T positions (T a multiple of
 * every compress ratio is not required: partial blocks make no entry). */
void tr_run_init(tr_run *r, const tr_model *m, int B, int T);
void tr_run_free(tr_run *r);

/* tokens: B rows of T+2 ids (inputs, next-token and MTP targets).
 * Computes logits (main and MTP) into r->head/mtp_head.logits. */
void tr_forward(const tr_model *m, const tr_opts *o, tr_run *r, const int32_t *tokens);
/* Losses from the logits (turns them into probabilities); returns the total. */
double tr_loss(const tr_model *m, const tr_opts *o, tr_run *r);
/* Gradients of the total loss into m->grads (accumulated; zero them first). */
void tr_backward(tr_model *m, const tr_opts *o, tr_run *r);

/* Sublayers. x [N, D] -> out [N, D]. */
void attn_forward(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, attn_acts *a, real *out);
void attn_backward(tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const attn_acts *a, const real *dout,
                   real *dx);
void moe_forward_train(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const int *ids, moe_acts *a,
                       real *out);
void moe_backward_train(tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const moe_acts *a, const real *dout,
                        real *dx);

/* Scratch owned by a run, freed with it (zeroed). */
void *tr_run_alloc(tr_run *r, size_t bytes);
void attn_acts_init(tr_run *r, const tr_model *m, const tr_layer *l, attn_acts *a);
void moe_acts_init(tr_run *r, const tr_model *m, moe_acts *a);

#endif
