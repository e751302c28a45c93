/* Element-wise and per-vector operations of the forward pass (float32). */
#ifndef V4C_OPS_H
#define V4C_OPS_H

/* rms(v) = 1/sqrt(mean(v^2) + eps) */
float rms_scale(const float *v, int n, float eps);
/* out = v * rms(v) * w (w may be NULL: no weight); out may alias v. */
void rmsnorm(float *out, const float *v, const float *w, int n, float eps);

/* rmsnorm without a weight, in place, of each of `rows` rows of n: the
 * same bits as rmsnorm row by row. */
void rmsnorm_rows(float *v, int rows, int n, float eps);

/* RoPE on R dims, adjacent pairs (v[2i], v[2i+1]) rotate by pos * freqs[i]
 * (or by -pos * freqs[i] when inverse). */
void rope(float *v, int R, const float *freqs, int pos, int inverse);
/* The same in two steps, for many vectors at one position (every head):
 * cs[2i], cs[2i + 1] = cos, sin of pos * freqs[i], computed once; R <= ROPE_MAX. */
enum { ROPE_MAX = 1024 };
void rope_table(float *cs, int R, const float *freqs, int pos);
void rope_rotate(float *v, int R, const float *cs, int inverse);
/* freqs[i], i < R/2, with YaRN blending when orig_max_pos > 0 (MODEL.md §4). */
void rope_freqs(float *freqs, int R, float base, float factor, int orig_max_pos, float beta_fast, float beta_slow);

/* Unnormalised Walsh-Hadamard transform (Sylvester order), n a power of 2. */
void hadamard(float *v, int n);

float softplusf(float x);
float siluf(float x);

static inline float sigmoidf(float x) { return 1.0f / (1.0f + __builtin_expf(-x)); }

/* SwiGLU with the clamp and a gain (MODEL.md §5), in place over one row:
 * h1[i] = clamp(h3[i], -lim, lim) * silu(min(h1[i], lim)) * gain. With
 * AVX-512 16 at a time (exp512: within ~2 ulp of expf; the scalar loop ran
 * on one thread while the other waited: docs/performance.md). */
void swiglu_row(float *h1, const float *h3, float gain, float lim, int n);



/* The mHC residual update of one token's hc streams of D (MODEL.md §3),
 * in place: X_j = post_j * a + sum_i comb[i * hc + j] * X_i, the sum over
 * i in order. hc <= 16. */
void hc_combine(float *X, const float *a, const float *post, const float *comb, int hc, int D);
/* y = sum_i w[i] * X_i over k rows of D, in order of i. */
void weighted_rows(float *y, const float *X, const float *w, int k, int D);

/* Indices of the k largest of s[0..n) (k <= n), in no particular order. */
void topk_indices(const float *s, int n, int k, int *out);
#endif
