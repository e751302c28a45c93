/* Sampling: penalties, temperature, top-k / top-p / min-p, and a seeded
 * generator, so a given seed gives the same tokens on every run. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/vexp.h"
#include "util/util.h"
#include "v4c.h"

struct v4c_sampler {
    v4c_sampling p;
    int vocab;
    uint64_t rng;
    uint8_t *seen;   /* [vocab] tokens of the context, for the penalties */
    int *order;      /* [vocab] scratch for sorting */
    float *scratch;  /* [vocab] */
    float *probs;    /* [vocab] for v4c_sampler_sample */
};

v4c_sampling v4c_sampling_default(void) {
    return (v4c_sampling){.temperature = 0, .top_k = 0, .top_p = 1, .min_p = 0, .repetition_penalty = 1, .presence_penalty = 0, .seed = 0};
}

v4c_sampler *v4c_sampler_new(const v4c_sampling *p, int vocab) {
    v4c_sampler *s = xcalloc(1, sizeof *s);
    s->p = *p;
    s->vocab = vocab;
    s->rng = p->seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    s->seen = xcalloc(vocab, 1);
    s->order = xmalloc((size_t)vocab * sizeof(int));
    s->scratch = xmalloc((size_t)vocab * sizeof(float));
    s->probs = xmalloc((size_t)vocab * sizeof(float));
    return s;
}

void v4c_sampler_free(v4c_sampler *s) {
    if (!s) return;
    free(s->seen);
    free(s->order);
    free(s->scratch);
    free(s->probs);
    free(s);
}

void v4c_sampler_accept(v4c_sampler *s, int32_t token) {
    if (token >= 0 && token < s->vocab) s->seen[token] = 1;
}

void v4c_sampler_reset(v4c_sampler *s) { memset(s->seen, 0, s->vocab); }

int v4c_sampler_greedy(const v4c_sampler *s) { return s->p.temperature <= 0 || s->p.top_k == 1; }

double v4c_sampler_uniform(v4c_sampler *s) { /* xorshift64* */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}


/* p[i] = e^((z[i] - mx) * inv_t) for all i, and their sum. The vocabulary
 * is 100K+ entries, sampled once per sequence and step: AVX-512 when the
 * CPU has it (a degree-6 polynomial after range reduction, within 2 ulp of
 * expf), expf otherwise. */
#define AVX512 __attribute__((target("avx512f,avx512dq")))
AVX512 static double exp_shifted_avx512(const float *z, float mx, float inv_t, float *p, int V) {
    const __m512 lowest = _mm512_set1_ps(-87.0f);
    __m512d sum_lo = _mm512_setzero_pd(), sum_hi = _mm512_setzero_pd();
    int i = 0;
    for (; i + 16 <= V; i += 16) {
        __m512 x = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(z + i), _mm512_set1_ps(mx)), _mm512_set1_ps(inv_t));
        __mmask16 under = _mm512_cmp_ps_mask(x, lowest, _CMP_LT_OQ); /* also -inf; NaN never: mx is the max */
        __m512 e = _mm512_maskz_mov_ps((__mmask16)~under, exp512(_mm512_max_ps(x, lowest)));
        _mm512_storeu_ps(p + i, e);
        sum_lo = _mm512_add_pd(sum_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        sum_hi = _mm512_add_pd(sum_hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(sum_lo, sum_hi));
    for (; i < V; i++) sum += p[i] = expf((z[i] - mx) * inv_t);
    return sum;
}

static double exp_shifted(const float *z, float mx, float inv_t, float *p, int V) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return exp_shifted_avx512(z, mx, inv_t, p, V);
    double sum = 0;
    for (int i = 0; i < V; i++) sum += p[i] = expf((z[i] - mx) * inv_t);
    return sum;
}

/* p[0..n) *= k (gcc -O2 leaves the plain loop scalar: it was 60% of a
 * 129,280-token draw). */
AVX512 static void scale_avx512(float *p, float k, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(p + i, _mm512_mul_ps(_mm512_loadu_ps(p + i), _mm512_set1_ps(k)));
    for (; i < n; i++) p[i] *= k;
}

static void scale(float *p, float k, int n) {
    if (__builtin_cpu_supports("avx512f")) {
        scale_avx512(p, k, n);
        return;
    }
    for (int i = 0; i < n; i++) p[i] *= k;
}

static int by_prob_desc(const void *a, const void *b, void *key) {
    const float *sort_key = key;
    float x = sort_key[*(const int *)a], y = sort_key[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b; /* stable: lower id first */
}

/* The largest of z[0..n), NaN entries ignored. */
AVX512 static float max_avx512(const float *z, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(_mm512_loadu_ps(z + i), m); /* a NaN in z loses, as in the scalar scan */
    float mx = _mm512_reduce_max_ps(m);
    for (; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    return mx;
}

static float max_of(const float *z, int n) {
    if (__builtin_cpu_supports("avx512f")) return max_avx512(z, n);
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    return mx;
}

void v4c_sampler_probs(v4c_sampler *s, const float *logits, float *probs) {
    int V = s->vocab;
    const float *z = logits;
    if (s->p.repetition_penalty != 1 || s->p.presence_penalty != 0) { /* the seen tokens' logits, adjusted */
        float *zz = s->scratch;
        memcpy(zz, logits, (size_t)V * sizeof(float));
        for (int i = 0; i < V; i++)
            if (s->seen[i]) {
                float v = zz[i];
                if (s->p.repetition_penalty != 1) v = v > 0 ? v / s->p.repetition_penalty : v * s->p.repetition_penalty;
                zz[i] = v - s->p.presence_penalty;
            }
        z = zz;
    }
    if (v4c_sampler_greedy(s)) {
        float mx = max_of(z, V);
        int best = 0;
        while (best < V - 1 && !(z[best] == mx)) best++; /* the first maximum, as a strict > scan finds */
        memset(probs, 0, (size_t)V * sizeof(float));
        probs[best] = 1;
        return;
    }
    float mx = max_of(z, V);
    double sum = exp_shifted(z, mx, 1.0f / s->p.temperature, probs, V);
    scale(probs, (float)(1.0 / sum), V);

    int filtered = (s->p.top_k > 0 && s->p.top_k < V) || s->p.top_p < 1 || s->p.min_p > 0;
    if (!filtered) return;
    /* Keep the head of the sorted distribution that every filter allows. */
    for (int i = 0; i < V; i++) s->order[i] = i;
    qsort_r(s->order, V, sizeof(int), by_prob_desc, probs);
    int keep = s->p.top_k > 0 && s->p.top_k < V ? s->p.top_k : V;
    double cum = 0, pmax = probs[s->order[0]];
    for (int r = 0; r < keep; r++) {
        float pr = probs[s->order[r]];
        if (r > 0 && pr < s->p.min_p * pmax) {
            keep = r;
            break;
        }
        cum += pr;
        if (cum >= s->p.top_p) {
            keep = r + 1;
            break;
        }
    }
    double kept = 0;
    for (int r = 0; r < keep; r++) kept += probs[s->order[r]];
    for (int r = keep; r < V; r++) probs[s->order[r]] = 0;
    for (int r = 0; r < keep; r++) probs[s->order[r]] = (float)(probs[s->order[r]] / kept);
}

/* The sum of 64 probabilities in double: 16 lanes, then the lanes in
 * order (a scalar scan is one chain of dependent adds; a draw over
 * 129,280 tokens takes 4-8 us so). */
AVX512 static double block_sum_avx512(const float *p) {
    __m512d a = _mm512_setzero_pd(), b = _mm512_setzero_pd();
    for (int k = 0; k < 64; k += 16) {
        __m512 v = _mm512_loadu_ps(p + k);
        a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        b = _mm512_add_pd(b, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a, b));
}

static double block_sum(const float *p, int n, int simd) {
    if (simd && n == 64) return block_sum_avx512(p);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += p[i];
    return sum;
}

int32_t v4c_sampler_draw(v4c_sampler *s, const float *probs) {
    double u = v4c_sampler_uniform(s), cum = 0;
    int last = 0, V = s->vocab, simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    for (int b = 0; b < V; b += 64) {
        int e = b + 64 < V ? b + 64 : V;
        double block = block_sum(probs + b, e - b, simd); /* whole blocks below u are skipped at once */
        if (cum + block <= u && e < V) {
            cum += block;
            for (int i = e - 1; i >= b; i--)
                if (probs[i] > 0) {
                    last = i;
                    break;
                }
            continue;
        }
        for (int i = b; i < e; i++) {
            if (probs[i] <= 0) continue;
            cum += probs[i];
            last = i;
            if (u < cum) return i;
        }
    }
    return last; /* rounding left u above the total */
}

int32_t v4c_sampler_pick(v4c_sampler *s, const float *probs) {
    if (!v4c_sampler_greedy(s)) return v4c_sampler_draw(s, probs);
    int best = 0;
    for (int i = 1; i < s->vocab; i++)
        if (probs[i] > probs[best]) best = i;
    return best;
}

int32_t v4c_sampler_sample(v4c_sampler *s, const float *logits) {
    v4c_sampler_probs(s, logits, s->probs);
    return v4c_sampler_pick(s, s->probs);
}
