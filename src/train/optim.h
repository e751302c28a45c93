/* Optimizers of TRAINING.md: Muon with the V4 hybrid Newton-Schulz for
 * matrices, AdamW for the rest, linear warm-up + cosine to lr/10, global
 * gradient clipping, and the auxiliary-loss-free bias updates. */
#ifndef V4C_TRAIN_OPTIM_H
#define V4C_TRAIN_OPTIM_H

#include "train/model.h"

typedef struct {
    float lr;            /* peak */
    int warmup, total;   /* steps */
    float weight_decay;  /* 0.1 */
    float muon_momentum; /* 0.95 */
    float beta1, beta2, adam_eps;
    float clip;          /* global gradient norm (0 = off) */
    float bias_gamma;    /* bias update speed (0.001) */
    int use_muon;        /* 0: AdamW for the matrices too (the comparison run) */
} optim_params;

typedef struct {
    optim_params p;
    real *m, *v; /* first moment / Muon momentum, second moment (mirror params) */
    int step;
    real *scratch;
} optimizer;

optim_params optim_defaults(void);
void optim_init(optimizer *o, const tr_model *m, const optim_params *p);
void optim_free(optimizer *o);
float optim_lr(const optim_params *p, int step);
/* One update from m->grads (clipped here); returns the gradient norm before clipping. */
double optim_step(optimizer *o, tr_model *m);
/* bias_e += gamma * sign(mean load - load_e) for every bias-routed layer. */
void moe_bias_update(tr_model *m, const tr_run *r, float gamma);

/* X [rows, cols] <- NS(X): fast steps with (3.4445, -4.7750, 2.0315), then
 * slow steps with (2, -1.5, 0.5); X must have Frobenius norm <= 1. */
void newton_schulz(real *X, int rows, int cols, int fast_steps, int slow_steps);

#endif
