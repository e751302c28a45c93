/* Sparse MQA attention over gathered keys with an attention sink. */
#ifndef V4C_ATTEND_H
#define V4C_ATTEND_H

/* For nh heads of one token (q: [nh][Dh]), over the nk key vectors keys[k]
 * (also the values): o[h] = sum_k softmax_k(q_h . key_k / sqrt(Dh), with
 * sink[h] in the denominator) key_k. S: [nh][nk] floats of scratch. */
void attend_heads(const float *q, int nh, const float *const *keys, int nk, int Dh, const float *sink, float *S, float *o);

#endif
