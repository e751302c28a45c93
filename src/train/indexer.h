/* Lightning indexer (MODEL.md §4; TRAINING.md "Lightning indexer"): its
 * forward (top-k selection) and its KL loss towards the main attention's
 * mass on the compressed entries, trained on detached inputs. */
#ifndef V4C_TRAIN_INDEXER_H
#define V4C_TRAIN_INDEXER_H

#include "train/model.h"

void indexer_acts_init(tr_run *r, const tr_model *m, const tr_layer *l, attn_acts *a);
/* qI, weights, indexer entries and the selection a->sel / a->n_sel. */
void indexer_forward(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, attn_acts *a);
/* a->kl = sum over rows of KL(p_t || softmax(I_t)) with p_t from a->mass. */
void indexer_kl_forward(const tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, attn_acts *a);
/* Gradients of kl_weight * kl / kl_rows into the indexer's parameters only. */
void indexer_kl_backward(tr_model *m, const tr_layer *l, const tr_opts *o, int B, int T, const real *x, const attn_acts *a);

#endif
