/* KV compressor forward/backward over whole sequences (MODEL.md §4). */
#ifndef V4C_TRAIN_COMPRESSOR_H
#define V4C_TRAIN_COMPRESSOR_H

#include "train/model.h"

void comp_acts_init(tr_run *r, const tr_compressor *cw, comp_acts *a);
/* Indexer compressor (for_indexer): Hadamard * d^-0.5 then FP4; main: FP8
 * on the non-RoPE dims (quant only when asked). */
void comp_forward(const tr_model *m, const tr_compressor *cw, const float *freqs, int B, int T, const real *x, comp_acts *a, int for_indexer,
                  int quant);
/* dent [B*nb, d] -> parameter gradients and dx (+=, may be NULL: detached). */
void comp_backward(tr_model *m, const tr_compressor *cw, const float *freqs, int B, int T, const real *x, const comp_acts *a, const real *dent,
                   int for_indexer, real *dx);

#endif
