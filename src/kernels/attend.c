/* Sparse MQA attention over gathered keys: every head of a token attends
 * the same key vectors (one shared kv head, MODEL.md §4), each key also
 * being its value, with a per-head sink logit in the softmax denominator.
 *
 * Because the keys are shared, the heads of a block are done together:
 * scores are a small GEMM (heads x keys, dot products over Dh) and the
 * output another (heads x Dh, sums over keys), so each key is read once per
 * block rather than once per head. The AVX-512 version blocks 4 heads x 4
 * keys for the scores and 8 heads x 32 dims for the output; the portable
 * one is the plain per-head loop. Sums are in float32 (16 lanes). */
#include "kernels/attend.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/backend.h"

/* Softmax with sink over S[0..nk), in place: p_k = e^(s_k - m) / den,
 * m = max_k s_k, den = sum_k e^(s_k - m) + e^(sink - m). */
static void softmax_sink(float *S, int nk, float sink) {
    float mx = -INFINITY, den = 0;
    for (int k = 0; k < nk; k++) mx = fmaxf(mx, S[k]);
    for (int k = 0; k < nk; k++) den += S[k] = expf(S[k] - mx);
    den += expf(sink - mx);
    for (int k = 0; k < nk; k++) S[k] /= den;
}

static void attend_portable(const float *q, int nh, const float *const *keys, int nk, int Dh, const float *sink, float *S, float *o) {
    float scale = 1.0f / sqrtf((float)Dh);
    for (int h = 0; h < nh; h++) {
        const float *qh = q + (size_t)h * Dh;
        float *Sh = S + (size_t)h * nk, *oh = o + (size_t)h * Dh;
        for (int k = 0; k < nk; k++) {
            float s = 0;
            for (int d = 0; d < Dh; d++) s += qh[d] * keys[k][d];
            Sh[k] = s * scale;
        }
        softmax_sink(Sh, nk, sink[h]);
        memset(oh, 0, (size_t)Dh * sizeof(float));
        for (int k = 0; k < nk; k++)
            for (int d = 0; d < Dh; d++) oh[d] += Sh[k] * keys[k][d];
    }
}

#define AVX512 __attribute__((target("avx512f,avx512dq")))
#define INLINE AVX512 static inline __attribute__((always_inline))

/* S[h][k] for HB heads x KB keys (constants after inlining). */
INLINE void scores_tile(const float *q, int Dh, const float *const *keys, int HB, int KB, float scale, float *S, int nk) {
    __m512 acc[4][4];
    _Pragma("GCC unroll 4") for (int h = 0; h < HB; h++) _Pragma("GCC unroll 4") for (int k = 0; k < KB; k++) acc[h][k] = _mm512_setzero_ps();
    for (int d = 0; d < Dh; d += 16) {
        __m512 kv[4];
        _Pragma("GCC unroll 4") for (int k = 0; k < KB; k++) kv[k] = _mm512_loadu_ps(keys[k] + d);
        _Pragma("GCC unroll 4") for (int h = 0; h < HB; h++) {
            __m512 qv = _mm512_loadu_ps(q + (size_t)h * Dh + d);
            _Pragma("GCC unroll 4") for (int k = 0; k < KB; k++) acc[h][k] = _mm512_fmadd_ps(qv, kv[k], acc[h][k]);
        }
    }
    _Pragma("GCC unroll 4") for (int h = 0; h < HB; h++) _Pragma("GCC unroll 4") for (int k = 0; k < KB; k++)
        S[(size_t)h * nk + k] = _mm512_reduce_add_ps(acc[h][k]) * scale;
}

/* o[h][d0 .. d0+32) for HB heads (<= 8): sum over keys of p[h][k] key_k. */
INLINE void output_tile(const float *S, int nk, const float *const *keys, int d0, int HB, float *o, int Dh) {
    __m512 acc[8][2];
    _Pragma("GCC unroll 8") for (int h = 0; h < HB; h++) acc[h][0] = acc[h][1] = _mm512_setzero_ps();
    for (int k = 0; k < nk; k++) {
        __m512 k0 = _mm512_loadu_ps(keys[k] + d0), k1 = _mm512_loadu_ps(keys[k] + d0 + 16);
        _Pragma("GCC unroll 8") for (int h = 0; h < HB; h++) {
            __m512 p = _mm512_set1_ps(S[(size_t)h * nk + k]);
            acc[h][0] = _mm512_fmadd_ps(p, k0, acc[h][0]);
            acc[h][1] = _mm512_fmadd_ps(p, k1, acc[h][1]);
        }
    }
    _Pragma("GCC unroll 8") for (int h = 0; h < HB; h++) {
        _mm512_storeu_ps(o + (size_t)h * Dh + d0, acc[h][0]);
        _mm512_storeu_ps(o + (size_t)h * Dh + d0 + 16, acc[h][1]);
    }
}

AVX512 static void attend_avx512(const float *q, int nh, const float *const *keys, int nk, int Dh, const float *sink, float *S, float *o) {
    float scale = 1.0f / sqrtf((float)Dh);
    for (int h = 0; h < nh; h += 4) {
        int hb = nh - h < 4 ? nh - h : 4, k = 0;
        const float *qh = q + (size_t)h * Dh;
        float *Sh = S + (size_t)h * nk;
        for (; k + 4 <= nk; k += 4) switch (hb) {
            case 1: scores_tile(qh, Dh, keys + k, 1, 4, scale, Sh + k, nk); break;
            case 2: scores_tile(qh, Dh, keys + k, 2, 4, scale, Sh + k, nk); break;
            case 3: scores_tile(qh, Dh, keys + k, 3, 4, scale, Sh + k, nk); break;
            default: scores_tile(qh, Dh, keys + k, 4, 4, scale, Sh + k, nk); break;
            }
        for (; k < nk; k++) switch (hb) {
            case 1: scores_tile(qh, Dh, keys + k, 1, 1, scale, Sh + k, nk); break;
            case 2: scores_tile(qh, Dh, keys + k, 2, 1, scale, Sh + k, nk); break;
            case 3: scores_tile(qh, Dh, keys + k, 3, 1, scale, Sh + k, nk); break;
            default: scores_tile(qh, Dh, keys + k, 4, 1, scale, Sh + k, nk); break;
            }
    }
    for (int h = 0; h < nh; h++) softmax_sink(S + (size_t)h * nk, nk, sink[h]);
    for (int h = 0; h < nh; h += 8) {
        int hb = nh - h < 8 ? nh - h : 8;
        for (int d = 0; d < Dh; d += 32) {
            if (hb == 8) output_tile(S + (size_t)h * nk, nk, keys, d, 8, o + (size_t)h * Dh, Dh);
            else
                for (int j = h; j < h + hb; j++) output_tile(S + (size_t)j * nk, nk, keys, d, 1, o + (size_t)j * Dh, Dh);
        }
    }
}

void attend_heads(const float *q, int nh, const float *const *keys, int nk, int Dh, const float *sink, float *S, float *o) {
    if (nk == 0) { /* only the sink: every probability is zero */
        memset(o, 0, (size_t)nh * Dh * sizeof(float));
        return;
    }
    if (Dh % 32 == 0 && cpu_has_avx512() && kernel_backend_active() != &backend_ref) attend_avx512(q, nh, keys, nk, Dh, sink, S, o);
    else attend_portable(q, nh, keys, nk, Dh, sink, S, o);
}
