/* mHC (MODEL.md §3) forward/backward: the pre-mix with its Sinkhorn-
 * normalised comb, the post update, and the HC head. */
#ifndef V4C_TRAIN_HC_H
#define V4C_TRAIN_HC_H

#include "train/real.h"
#include "v4c.h"

/* What the backward pass needs of one mHC pre-mix (or head) over n tokens. */
typedef struct {
    real *mix;  /* [n, rows] (fn . flat) * rms(flat) */
    real *r;    /* [n] rms(flat) */
    real *pre;  /* [n, hc] pre weights (head: the w_i) */
    real *post; /* [n, hc] (sublayers only) */
    real *comb; /* [n, hc, hc] (sublayers only) */
} hc_acts;

/* rows = (2+hc)*hc for a sublayer, hc for the head. X [n, hc, D] -> y [n, D]. */
void hc_pre_forward(const v4c_config *c, const real *fn, const real *base, const real *scale, int rows, const real *X, int n, hc_acts *a,
                    real *y);
/* dy, dpost, dcomb (the latter two NULL for the head) -> dX (+=), dfn, dbase, dscale (+=). */
void hc_pre_backward(const v4c_config *c, const real *fn, const real *base, const real *scale, int rows, const real *X, int n,
                     const hc_acts *a, const real *dy, const real *dpost, const real *dcomb, real *dX, real *dfn, real *dbase,
                     real *dscale);

/* Xout_j = post_j * f + sum_i C[i][j] Xin_i. */
void hc_post_forward(const v4c_config *c, real *Xout, const real *Xin, const real *f, const hc_acts *a, int n);
/* dXout -> dXin (+=), df (=), dpost (=), dcomb (=). */
void hc_post_backward(const v4c_config *c, const real *dXout, const real *Xin, const real *f, const hc_acts *a, int n, real *dXin, real *df,
                      real *dpost, real *dcomb);

void sinkhorn_forward(real *C, int hc, int iters, real eps);
/* z: the logits Sinkhorn started from; dC: gradient of its output -> dz. */
void sinkhorn_backward(const real *z, const real *dC, real *dz, int hc, int iters, real eps);

#endif
