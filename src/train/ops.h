/* Forward/backward pairs of the element-wise and per-row operations
 * (llm.c style: same argument order, backward accumulates into d*). */
#ifndef V4C_TRAIN_OPS_H
#define V4C_TRAIN_OPS_H

#include "train/real.h"

/* y[n, out] = x[n, in] W^T (W [out, in] row-major, leading dims given). */
void linear_forward(real *y, int ldy, const real *x, int ldx, const real *W, int ldw, int n, int in, int out);
/* dx += dy W, dW += dy^T x (either may be NULL). */
void linear_backward(real *dx, int lddx, real *dW, const real *dy, int lddy, const real *x, int ldx, const real *W, int ldw, int n, int in,
                     int out);

/* out[r] = v[r] * rms(v[r]) * w (w may be NULL), n rows of width d; rstd[r] kept. */
void rmsnorm_forward(real *out, real *rstd, const real *v, const real *w, int n, int d, real eps);
void rmsnorm_backward(real *dv, real *dw, const real *dout, const real *v, const real *w, const real *rstd, int n, int d);

/* RoPE on R dims at position pos (inverse: by -pos); its backward is the
 * opposite rotation. */
void rope_apply(real *v, int R, const float *freqs, int pos, int inverse);
void hadamard_r(real *v, int n);

/* Activation quantization of MODEL.md §2 (values only; gradients pass
 * straight through). */
void quant_fp8_r(real *v, int n, int block);
void quant_fp4_r(real *v, int n, int block);

/* Cross-entropy over rows of logits [n, V] with targets (target < 0: row
 * ignored). logits become probabilities; returns the summed loss. */
double crossentropy_forward(real *logits, const int *targets, int n, int V);
/* dlogits = (probs - onehot) * scale (in place on probs). */
void crossentropy_backward(real *probs, const int *targets, int n, int V, real scale);

#endif
