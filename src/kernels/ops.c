#include "kernels/ops.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/vexp.h"

float rms_scale(const float *v, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += v[i] * v[i];
    return 1.0f / sqrtf(ss / n + eps);
}

/* out = v * s * w (w NULL: 1), element by element: the same bits in 16
 * lanes as one at a time (the loop stayed scalar in this baseline build). */
__attribute__((target("avx512f"))) static void scale_row_avx512(float *out, const float *v, float s, const float *w, int n) {
    __m512 sv = _mm512_set1_ps(s);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + i), sv);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(x, w ? _mm512_maskz_loadu_ps(m, w + i) : _mm512_set1_ps(1.0f)));
    }
}

static void scale_row(float *out, const float *v, float s, const float *w, int n) {
    if (__builtin_cpu_supports("avx512f")) {
        scale_row_avx512(out, v, s, w, n);
        return;
    }
    for (int i = 0; i < n; i++) out[i] = v[i] * s * (w ? w[i] : 1.0f);
}

void rmsnorm(float *out, const float *v, const float *w, int n, float eps) { scale_row(out, v, rms_scale(v, n, eps), w, n); }

/* Rows side by side: each row's sum of squares is still its own
 * sequential sum in column order (the same bits as rms_scale), but 8 of
 * them run at once, so the adds no longer wait on each other's latency
 * (a decode token's 64 q heads of 512: 31-37 -> 9 us a layer, with the
 * scaling in AVX-512). */
void rmsnorm_rows(float *v, int rows, int n, float eps) {
    int r = 0;
    for (; r + 8 <= rows; r += 8) {
        float *b = v + (size_t)r * n, s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        const float *p0 = b, *p1 = p0 + n, *p2 = p1 + n, *p3 = p2 + n, *p4 = p3 + n, *p5 = p4 + n, *p6 = p5 + n, *p7 = p6 + n;
        for (int i = 0; i < n; i++) {
            s0 += p0[i] * p0[i], s1 += p1[i] * p1[i], s2 += p2[i] * p2[i], s3 += p3[i] * p3[i];
            s4 += p4[i] * p4[i], s5 += p5[i] * p5[i], s6 += p6[i] * p6[i], s7 += p7[i] * p7[i];
        }
        float ss[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
        for (int k = 0; k < 8; k++) scale_row(b + (size_t)k * n, b + (size_t)k * n, 1.0f / sqrtf(ss[k] / n + eps), NULL, n);
    }
    for (; r < rows; r++) rmsnorm(v + (size_t)r * n, v + (size_t)r * n, NULL, n, eps);
}

void rope_table(float *cs, int R, const float *freqs, int pos) {
    for (int i = 0; i < R / 2; i++) {
        float angle = (float)pos * freqs[i];
        cs[2 * i] = cosf(angle), cs[2 * i + 1] = sinf(angle);
    }
}

void rope_rotate(float *v, int R, const float *cs, int inverse) {
    for (int i = 0; i < R / 2; i++) {
        float c = cs[2 * i], s = inverse ? -cs[2 * i + 1] : cs[2 * i + 1];
        float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c - b * s;
        v[2 * i + 1] = a * s + b * c;
    }
}

void rope(float *v, int R, const float *freqs, int pos, int inverse) {
    float cs[ROPE_MAX];
    rope_table(cs, R, freqs, pos);
    rope_rotate(v, R, cs, inverse);
}

static double yarn_corr(double n_rot, int R, double base, int orig) {
    return R * log(orig / (n_rot * 2 * M_PI)) / (2 * log(base));
}

void rope_freqs(float *freqs, int R, float base, float factor, int orig_max_pos, float beta_fast, float beta_slow) {
    for (int i = 0; i < R / 2; i++) freqs[i] = (float)(1.0 / pow(base, (double)(2 * i) / R));
    if (orig_max_pos <= 0) return;
    double low = floor(yarn_corr(beta_fast, R, base, orig_max_pos));
    double high = ceil(yarn_corr(beta_slow, R, base, orig_max_pos));
    if (low < 0) low = 0;
    if (high > R - 1) high = R - 1;
    if (low == high) high += 0.001;
    for (int i = 0; i < R / 2; i++) {
        float ramp = (float)((i - low) / (high - low));
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        freqs[i] = freqs[i] / factor * ramp + freqs[i] * (1 - ramp);
    }
}

void hadamard(float *v, int n) {
    for (int h = 1; h < n; h *= 2)
        for (int i = 0; i < n; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                float a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

float softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
float siluf(float x) { return x / (1.0f + expf(-x)); }

static inline float swiglu1(float h1, float h3, float gain, float lim) { return fminf(fmaxf(h3, -lim), lim) * siluf(fminf(h1, lim)) * gain; }

__attribute__((target("avx512f"))) static void swiglu_row_avx512(float *h1, const float *h3, float gain, float lim, int n) {
    const __m512 hi = _mm512_set1_ps(lim), lo = _mm512_set1_ps(-lim), one = _mm512_set1_ps(1.0f), g = _mm512_set1_ps(gain);
    const __m512 lowest = _mm512_set1_ps(-87.0f); /* e^-x below e^-87 adds nothing to 1 */
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 up = _mm512_min_ps(_mm512_max_ps(_mm512_loadu_ps(h3 + i), lo), hi), x = _mm512_min_ps(_mm512_loadu_ps(h1 + i), hi);
        __m512 silu = _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), x), lowest))));
        _mm512_storeu_ps(h1 + i, _mm512_mul_ps(_mm512_mul_ps(up, silu), g));
    }
    for (; i < n; i++) h1[i] = swiglu1(h1[i], h3[i], gain, lim);
}

void swiglu_row(float *h1, const float *h3, float gain, float lim, int n) {
    if (__builtin_cpu_supports("avx512f")) {
        swiglu_row_avx512(h1, h3, gain, lim, n);
        return;
    }
    for (int i = 0; i < n; i++) h1[i] = swiglu1(h1[i], h3[i], gain, lim);
}

/* hc_combine and weighted_rows: separate multiplies and adds in the
 * portable loops' order, so both paths give the same bits. Without them
 * (the project builds for baseline x86-64) these loops ran scalar: hc_post
 * and hc_pre took 1.1 ms of a 35 ms decode token on the bench model. */
__attribute__((target("avx512f"))) static void hc_combine_avx512(float *X, const float *a, const float *post, const float *comb, int hc, int D) {
    for (int d = 0; d < D; d += 16) {
        __mmask16 m = D - d >= 16 ? 0xFFFF : (__mmask16)((1u << (D - d)) - 1);
        __m512 old[16], ad = _mm512_maskz_loadu_ps(m, a + d);
        for (int i = 0; i < hc; i++) old[i] = _mm512_maskz_loadu_ps(m, X + (size_t)i * D + d);
        for (int j = 0; j < hc; j++) {
            __m512 v = _mm512_mul_ps(_mm512_set1_ps(post[j]), ad);
            for (int i = 0; i < hc; i++) v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(comb[i * hc + j]), old[i]));
            _mm512_mask_storeu_ps(X + (size_t)j * D + d, m, v);
        }
    }
}

void hc_combine(float *X, const float *a, const float *post, const float *comb, int hc, int D) {
    if (__builtin_cpu_supports("avx512f")) {
        hc_combine_avx512(X, a, post, comb, hc, D);
        return;
    }
    enum { CHUNK = 64 };
    float old[16][CHUNK];
    for (int d0 = 0; d0 < D; d0 += CHUNK) {
        int len = D - d0 < CHUNK ? D - d0 : CHUNK;
        for (int i = 0; i < hc; i++) memcpy(old[i], X + (size_t)i * D + d0, (size_t)len * sizeof(float));
        for (int j = 0; j < hc; j++) {
            float *xj = X + (size_t)j * D + d0;
            for (int d = 0; d < len; d++) {
                float v = post[j] * a[d0 + d];
                for (int i = 0; i < hc; i++) v += comb[i * hc + j] * old[i][d];
                xj[d] = v;
            }
        }
    }
}

__attribute__((target("avx512f"))) static void weighted_rows_avx512(float *y, const float *X, const float *w, int k, int D) {
    for (int d = 0; d < D; d += 16) {
        __mmask16 m = D - d >= 16 ? 0xFFFF : (__mmask16)((1u << (D - d)) - 1);
        __m512 v = _mm512_setzero_ps();
        for (int i = 0; i < k; i++) v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(w[i]), _mm512_maskz_loadu_ps(m, X + (size_t)i * D + d)));
        _mm512_mask_storeu_ps(y + d, m, v);
    }
}

void weighted_rows(float *y, const float *X, const float *w, int k, int D) {
    if (__builtin_cpu_supports("avx512f")) {
        weighted_rows_avx512(y, X, w, k, D);
        return;
    }
    for (int d = 0; d < D; d++) {
        float v = 0;
        for (int i = 0; i < k; i++) v += w[i] * X[(size_t)i * D + d];
        y[d] = v;
    }
}

/* A min-heap of the k best so far: O(n log k). */
static void sift_down(const float *s, int *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && s[h[l]] < s[h[m]]) m = l;
        if (r < k && s[h[r]] < s[h[m]]) m = r;
        if (m == i) return;
        int t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void topk_indices(const float *s, int n, int k, int *out) {
    if (k <= 0) return;
    for (int i = 0; i < k; i++) out[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(s, out, k, i);
    for (int i = k; i < n; i++)
        if (s[i] > s[out[0]]) {
            out[0] = i;
            sift_down(s, out, k, 0);
        }
}
