/* The default AVX-512 kernels: float32 sums flushed to double.
 *
 * FP8 and FP4 weights go through the BF16 dot product (vdpbf16ps).
 * Why this is allowed: an FP8/FP4 linear layer sees fp8_quant(x) as input,
 * so every x value and every weight (times its power-of-two scale) is
 * exactly representable in bf16, and each product of two such values has at
 * most 8 significant bits: vdpbf16ps forms the products exactly. Only the
 * summation rounds. It runs in float32 lanes for at most 32 products per
 * lane; a "flush" every 512 columns adds lanes l and l+8 in float and those
 * 8 sums into double lanes. That keeps the golden FP8 case at the exact
 * kernels' agreement (docs/numerics.md). Inputs that are not bf16-exact, or scales that could
 * leave the normal range, take the exact double kernels instead.
 *
 * One summation order for every batch size: output (r, t) is the chain
 *   acc = dp(acc, W_r[c], X_t[c]) over 32-column chunks c,
 * flushed to double after every 16th chunk and at the end. The scales go
 * where they are cheapest, which changes no product: FP8's block scale is
 * folded into x (one token) or into the weights (several); FP4's group
 * scales into x for one token (an exponent add on its nonzero words: each
 * 128-bit lane of a decoded chunk holds one scale group) and into the
 * weights for several. So one token and a batch give bit-identical
 * results (chunked prefill equals token-by-token decode).
 *
 * Column order inside a step follows the decoders:
 *   FP8 (64 columns): bytes -> (lo, hi) byte tables -> unpacklo/unpackhi,
 *        so chunk h of step g holds columns 64g + 16L + 8h + i
 *        (L = word / 8, i = word % 8);
 *   FP4 (128 columns, 64 bytes): nibbles -> bf16 (lo, hi) byte tables by
 *        vpshufb -> unpacklo/unpackhi, so word i of lane L of chunk q holds
 *        the low (q < 2) or high nibble of byte 16L + 8(q % 2) + i, column
 *        128g + 32L + 2(8(q % 2) + i) + q / 2.
 * x is laid out in the same order once per call (dot_prepare). */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/avx512_fast.h"

uint8_t fast_fp8_hi[128], fast_fp8_lo[128];
int fast_prefetch = 1;
uint8_t fast_fp4_lo[64], fast_fp4_hi[64];
uint16_t fast_fp4_bf16[32];
float fast_fp4_f32[16];
int fast_fp4_fma;

static uint16_t f32_to_bf16_exact(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static float e4m3_magnitude(int m) { /* e4m3fn code 0..127 */
    int e = m >> 3, f = m & 7;
    if (m == 0x7F) return NAN;
    return e ? ldexpf((float)(8 + f), e - 10) : ldexpf((float)f, -9);
}

/* Software prefetch of the next row group: on, except on AMD family 1Ah
 * (Zen 5) and later (avx512_fast.h). */
static int prefetch_default(void) {
    const char *env = getenv("V4C_PREFETCH");
    if (env && *env) return atoi(env) != 0;
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x68747541u) return 1; /* "Auth"enticAMD */
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = (a >> 8) & 0xF;
    if (family == 0xF) family += (a >> 20) & 0xFF;
    return family < 0x1A;
}

/* A bf16 of random sign and mantissa, exponent 2^-12..2^12 (an LCG step). */
static uint16_t random_bf16(uint32_t *seed) {
    *seed = *seed * 1664525u + 1013904223u;
    return (uint16_t)((*seed >> 16 & 0x8000) | (uint32_t)(115 + (*seed >> 8) % 25) << 7 | (*seed & 127));
}

/* Whether vdpbf16ps adds a lane's odd product and then its even one, each
 * rounded, as Intel's manual defines it: then two float FMAs in that order
 * give its bits (the products are exact, and the inputs the dot kernels
 * take keep every sum normal, so its flushing of denormals never acts).
 * Checked on random bf16 values, 16 lanes x 512. */
DOT static int dpbf16_is_two_fmas(void) {
    uint32_t seed = 12345;
    for (int it = 0; it < 512; it++) {
        uint16_t a[32], b[32];
        float acc[16], got[16];
        for (int i = 0; i < 32; i++) a[i] = random_bf16(&seed), b[i] = random_bf16(&seed);
        for (int i = 0; i < 16; i++) acc[i] = bf16_to_f32(random_bf16(&seed));
        _mm512_storeu_ps(got, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), (__m512bh)_mm512_loadu_si512(a), (__m512bh)_mm512_loadu_si512(b)));
        for (int i = 0; i < 16; i++) {
            float want = fmaf(bf16_to_f32(a[2 * i]), bf16_to_f32(b[2 * i]), fmaf(bf16_to_f32(a[2 * i + 1]), bf16_to_f32(b[2 * i + 1]), acc[i]));
            if (memcmp(&want, &got[i], 4)) return 0;
        }
    }
    return 1;
}

/* One-token FP4 panels through float FMAs (avx512_fast.h, fp4_fma): on
 * Intel, where vdpbf16ps takes both vector ports for two cycles and an FMA
 * one port for one, if its bits are two FMAs'; V4C_FP4_FMA=0|1 overrides
 * (still only where they are). */
static int fp4_fma_default(void) {
    if (!dot_supported() || !dpbf16_is_two_fmas()) return 0;
    const char *env = getenv("V4C_FP4_FMA");
    if (env && *env) return atoi(env) != 0;
    unsigned a, b, c, d;
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547u; /* "Genu"ineIntel */
}

static void init_tables(void) {
    fast_prefetch = prefetch_default();
    fast_fp4_fma = fp4_fma_default();
    for (int m = 0; m < 128; m++) {
        uint16_t b = f32_to_bf16_exact(e4m3_magnitude(m));
        fast_fp8_hi[m] = (uint8_t)(b >> 8), fast_fp8_lo[m] = (uint8_t)b;
    }
    for (int i = 0; i < 64; i++) {
        uint16_t b = f32_to_bf16_exact(e2m1_table[i % 16]);
        fast_fp4_lo[i] = (uint8_t)b, fast_fp4_hi[i] = (uint8_t)(b >> 8);
        if (i < 32) fast_fp4_bf16[i] = b;
        if (i < 16) fast_fp4_f32[i] = e2m1_table[i];
    }
}

void fast_tables_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_tables);
}

int dot_supported(void) {
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi");
}

/* ---- inputs ------------------------------------------------------------ */

/* Columns per decoder step, per kind. */
static int step_columns(weight_kind kind) { return kind == WK_FP8 ? 64 : 128; }

/* Which of 16 floats are not bf16 values within 2^+-EXP_LIMIT (zero is). */
INLINE __mmask16 bf16_bad(__m512i u) {
    __mmask16 inexact = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0xFFFF));
    __m512i e = _mm512_sub_epi32(_mm512_and_si512(_mm512_srli_epi32(u, 23), _mm512_set1_epi32(0xFF)), _mm512_set1_epi32(127));
    __mmask16 range = _mm512_cmpgt_epi32_mask(_mm512_abs_epi32(e), _mm512_set1_epi32(EXP_LIMIT));
    return inexact | (range & _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x7FFFFFFF)));
}

/* x in the decoders' column order (the header comment): each 16 columns
 * become two 8-word lanes of chunks. FP8: block L of a step (columns
 * 16L..16L+15) is lane L of chunks 0 (first 8) and 1 (last 8). FP4: block k
 * is half of scale group L = k / 2; its even columns are lane L of chunk
 * k % 2, its odd ones lane L of chunk 2 + k % 2. */
DOT int dot_prepare(weight_kind kind, const float *x, int ldx, int n, int cols, uint16_t *xb) {
    fast_tables_init();
    int step = step_columns(kind), fp4 = kind == WK_FP4;
    if (cols % step) return 0;
    const __m256i evens_odds = _mm256_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int t = 0; t < n; t++) {
        uint16_t *o = xb + (size_t)t * cols;
        const float *xt = x + (size_t)t * ldx;
        for (int g = 0; g < cols; g += step)
            for (int k = 0; k < step / 16; k++) {
                __m512i u = _mm512_loadu_si512(xt + g + 16 * k);
                if (bf16_bad(u)) return 0;
                __m256i w = _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16));
                int first = fp4 ? 32 * (k % 2) + 8 * (k / 2) : 8 * k, second = fp4 ? first + 64 : first + 32;
                if (fp4) w = _mm256_permutexvar_epi16(evens_odds, w);
                _mm_storeu_si128((__m128i *)(o + g + first), _mm256_castsi256_si128(w));
                _mm_storeu_si128((__m128i *)(o + g + second), _mm256_extracti128_si256(w, 1));
            }
    }
    return 1;
}

DOT int dot_prepare_pairs(const float *x, int ldx, int n, int cols, uint16_t *xb) {
    fast_tables_init();
    if (cols % 32) return 0;
    for (int t = 0; t < n; t++)
        for (int c = 0; c < cols; c += 16) {
            __m512i u = _mm512_loadu_si512(x + (size_t)t * ldx + c);
            if (bf16_bad(u)) return 0;
            _mm256_storeu_si256((__m256i *)(xb + (size_t)t * cols + c), _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
        }
    return 1;
}

/* ---- decoders ---------------------------------------------------------- */

/* FP4 row: packed codes and one e8m0 scale per 32 columns. */
typedef struct {
    const uint8_t *codes, *scales;
} fp4_row;

/* Step g (128 columns, 64 bytes) of a row as 4 chunks of unscaled bf16
 * codes; in-lane shuffles only, so lane L holds scale group 4g + L. */
INLINE void fp4_decode(const fp4_tables *T, const fp4_row *R, int g, __m512i c[4]) { fp4_decode_line(T, R->codes + 64 * g, c); }

/* The 4 scale bytes of step g, byte L copied by vpshufb into every element
 * of lane L at `pattern`'s places (the other bytes zero). */
INLINE __m512i fp4_step_scales(const fp4_row *R, int g, __m512i pattern) {
    uint32_t s4;
    memcpy(&s4, R->scales + 4 * g, 4);
    return _mm512_shuffle_epi8(_mm512_set1_epi32((int)s4), pattern);
}

/* Words of lane L: s_L << 7, the e8m0 byte in a bf16's exponent place. */
INLINE __m512i fp4_exponent_words(const fp4_row *R, int g) {
    const __m512i pattern = _mm512_set_epi16(0x03FF, 0x03FF, 0x03FF, 0x03FF, 0x03FF, 0x03FF, 0x03FF, 0x03FF, 0x02FF, 0x02FF, 0x02FF, 0x02FF,
                                             0x02FF, 0x02FF, 0x02FF, 0x02FF, 0x01FF, 0x01FF, 0x01FF, 0x01FF, 0x01FF, 0x01FF, 0x01FF, 0x01FF,
                                             0x00FF, 0x00FF, 0x00FF, 0x00FF, 0x00FF, 0x00FF, 0x00FF, 0x00FF); /* s_L << 8 */
    return _mm512_srli_epi16(fp4_step_scales(R, g, pattern), 1);
}

/* (s_L - 127) << 7: adding it to a nonzero bf16 multiplies by the scale. */
INLINE __m512i fp4_scale_words(const fp4_row *R, int g) { return _mm512_sub_epi16(fp4_exponent_words(R, g), _mm512_set1_epi16(127 << 7)); }

/* ---- chains -------------------------------------------------------------- */

#define DP(acc, w, x) _mm512_dpbf16_ps((acc), (__m512bh)(w), (__m512bh)(x))

/* NR rows x NT tokens (NR * NT <= VA) decoded on the fly, for one token or
 * a few: each decoded chunk serves all NT. Row i is r + i * rs (rs = 1:
 * adjacent rows; more: one row of each of NR streams, dot_stream). xs:
 * [NT][cols] in chunk order, with the FP8 block scales already folded in
 * (FP4: plain x); FP8 row i reads its own copy at xs + i * xstep (streams:
 * the rows are in different blocks). */
INLINE void gemv_rows(const v4c_matrix *W, int r, int rs, int NR, int NT, const uint16_t *xs, size_t xstep, float *y, int ldy) {
    int cols = W->cols, steps = cols / 64, groups = cols / 32;
    __m512 acc[VA];
    __m512d ds[VA];
    _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) acc[a] = _mm512_setzero_ps(), ds[a] = _mm512_setzero_pd();
    if (W->kind == WK_FP8) {
        fp8_tables T = fp8_tables_load();
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * cols;
        for (int g = 0; g < steps; g++) {
            if (rs == 1) prefetch_next(w, (size_t)NR * cols, g, steps);
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                __m512i w0, w1;
                fp8_decode(&T, w + (size_t)i * rs * cols + 64 * g, &w0, &w1);
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                    const uint16_t *xt = xs + i * xstep + (size_t)t * cols + 64 * g;
                    acc[i * NT + t] = DP(DP(acc[i * NT + t], w0, _mm512_loadu_si512(xt)), w1, _mm512_loadu_si512(xt + 32));
                }
            }
            if (g % (FLUSH_CHUNKS / 2) == FLUSH_CHUNKS / 2 - 1 || g == steps - 1)
                _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
        }
    } else {
        fp4_tables T = fp4_tables_load();
        fp4_row R[VR];
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            R[i].codes = (const uint8_t *)W->data + (size_t)(r + i * rs) * (cols / 2);
            R[i].scales = (const uint8_t *)W->scale + (size_t)(r + i * rs) * groups;
        }
        int steps4 = cols / 128;
        for (int g = 0; g < steps4; g++) {
            if (rs == 1) prefetch_next(R[0].codes, (size_t)NR * (cols / 2), g, steps4);
            __m512i x1[4];
            __mmask32 nz1[4];
            if (NT == 1) /* one token: the scales go on x. Its nonzero words, found once for all rows, carry
                          * the -127 of the exponent bias already (integer words; valid again once a scale is added).
                          * The scaled copy zero-masks the others: a +0 for a -0 changes no sum (each chain starts
                          * at +0), and the copy of x a merge would need is saved. */
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                    x1[q] = _mm512_loadu_si512(xs + 128 * g + 32 * q);
                    nz1[q] = _mm512_test_epi16_mask(x1[q], _mm512_set1_epi16(0x7FFF));
                    x1[q] = _mm512_mask_sub_epi16(x1[q], nz1[q], x1[q], _mm512_set1_epi16(127 << 7));
                }
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                __m512i c[4];
                fp4_decode(&T, &R[i], g, c);
                if (NT == 1) {
                    __m512i e = fp4_exponent_words(&R[i], g);
                    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) acc[i] = DP(acc[i], c[q], _mm512_maskz_add_epi16(nz1[q], x1[q], e));
                } else {
                    __m512i e7 = fp4_scale_words(&R[i], g);
                    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) c[q] = bf16_scale(c[q], e7);
                    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                        const uint16_t *xt = xs + (size_t)t * cols + 128 * g;
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) acc[i * NT + t] = DP(acc[i * NT + t], c[q], _mm512_loadu_si512(xt + 32 * q));
                    }
                }
            }
            if (g % (FLUSH_CHUNKS / 4) == FLUSH_CHUNKS / 4 - 1 || g == steps4 - 1)
                _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
        }
    }
    store_pass(ds, NR, NT, rs, y, ldy);
}

/* MR panel rows (stride `stride`) x NT tokens over kcols columns, same chain
 * as gemv_rows; ds[i * MT + t] carries the double sums across blocks
 * (zeroed when `first`, finished into y when `last`). */
INLINE void micro(const uint16_t *P, int stride, const uint16_t *X, int NT, int kcols, __m512d *ds, int first, int last, float *y, int ldy,
                  int nr) {
    int chunks = kcols / 32;
    __m512 acc[MR][MT];
    _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
        acc[i][t] = _mm512_setzero_ps();
        if (first) ds[i * MT + t] = _mm512_setzero_pd();
    }
    for (int c = 0; c < chunks; c++) {
        __m512i w[MR];
        _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) w[i] = _mm512_loadu_si512(P + (size_t)i * stride + 32 * c);
        _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
            __m512i x = _mm512_loadu_si512(X + (size_t)t * stride + 32 * c);
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) acc[i][t] = DP(acc[i][t], w[i], x);
        }
        if (c % FLUSH_CHUNKS == FLUSH_CHUNKS - 1 || c == chunks - 1)
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++)
                flush(&acc[i][t], &ds[i * MT + t]);
    }
    if (last) store_sums(ds, MR, NT, MT, nr, y, ldy);
}

/* Decode rows [r, r+nr) into a bf16 panel (scales folded in), zero rows up
 * to MR-multiple. */
DOT static void decode_panel(const v4c_matrix *W, int r, int nr, uint16_t *P) {
    int cols = W->cols, steps = cols / 64, groups = cols / 32, padded = (nr + MR - 1) / MR * MR;
    fp8_tables T = fp8_tables_load();
    fp4_tables T4 = fp4_tables_load();
    for (int i = 0; i < nr; i++) {
        uint16_t *o = P + (size_t)i * cols;
        if (W->kind == WK_FP8) {
            const uint8_t *w = (const uint8_t *)W->data + (size_t)(r + i) * cols;
            const uint8_t *sc = (const uint8_t *)W->scale + (size_t)((r + i) / 128) * ((cols + 127) / 128);
            for (int g = 0; g < steps; g++) {
                __m512i w0, w1, e7 = _mm512_set1_epi16((short)((sc[g / 2] - 127) * 128));
                fp8_decode(&T, w + 64 * g, &w0, &w1);
                _mm512_storeu_si512(o + 64 * g, bf16_scale(w0, e7));
                _mm512_storeu_si512(o + 64 * g + 32, bf16_scale(w1, e7));
            }
        } else {
            fp4_row R = {(const uint8_t *)W->data + (size_t)(r + i) * (cols / 2), (const uint8_t *)W->scale + (size_t)(r + i) * groups};
            for (int g = 0; g < cols / 128; g++) {
                __m512i c[4];
                fp4_decode(&T4, &R, g, c);
                __m512i e7 = fp4_scale_words(&R, g);
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) _mm512_storeu_si512(o + 128 * g + 32 * q, bf16_scale(c[q], e7));
            }
        }
    }
    memset(P + (size_t)nr * cols, 0, (size_t)(padded - nr) * cols * 2);
}

/* ---- exact fallback for one row (scales out of range) -------------------- */

void exact_row(const v4c_matrix *W, int r, const float *x, int ldx, int n, float *y, int ldy, float *wrow) {
    matrix_row_f32(W, r, wrow);
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * ldx;
        double s = 0;
        for (int k = 0; k < W->cols; k++) s += (double)wrow[k] * xt[k];
        y[(size_t)t * ldy] = (float)s;
    }
}

DOT int fp8_block_ok(const v4c_matrix *W, int r) {
    const uint8_t *sc = (const uint8_t *)W->scale + (size_t)(r / 128) * ((W->cols + 127) / 128);
    for (int b = 0; b < (W->cols + 127) / 128; b++)
        if (sc[b] < 127 - EXP_LIMIT || sc[b] > 127 + EXP_LIMIT) return 0;
    return 1;
}

/* n tokens of x (chunk order) times the block scales of the 128-row block
 * holding row r, into sx: FP8's one-token and few-token input. */
DOT static void fp8_scale_input(const v4c_matrix *W, int r, const uint16_t *xb, int n, uint16_t *sx) {
    int cols = W->cols;
    const uint8_t *sc = (const uint8_t *)W->scale + (size_t)(r / 128) * ((cols + 127) / 128);
    for (int t = 0; t < n; t++)
        for (int g = 0; g < cols / 64; g++) {
            __m512i e7 = _mm512_set1_epi16((short)((sc[g / 2] - 127) * 128));
            for (int h = 0; h < 2; h++) {
                size_t at = (size_t)t * cols + 64 * g + 32 * h;
                _mm512_storeu_si512(sx + at, bf16_scale(_mm512_loadu_si512(xb + at), e7));
            }
        }
}

/* ---- the rows kernel ----------------------------------------------------- */

DOT static void rows_span(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    int cols = W->cols, n = in->n;
    int fp8 = W->kind == WK_FP8;
    if (fp8 && !fp8_block_ok(W, r0)) {
        for (int r = r0; r < r1; r++) exact_row(W, r, in->x, in->ldx, n, y + (r - r0), ldy, scratch);
        return;
    }
    if (in->xf) { /* FP8 with a float input */
        fast_fp8_float_span(W, r0, r1, in->xf, in->xf_scalable, n, y, ldy, scratch);
        return;
    }
    if (n <= few_tokens(cols)) { /* a few tokens: rows decoded on the fly */
        const uint16_t *xs = in->xb;
        if (fp8) { /* fold this row block's scales into x */
            fp8_scale_input(W, r0, in->xb, n, scratch);
            xs = scratch;
        }
        float *wrow = (float *)((uint16_t *)scratch + (size_t)VR * cols);
        for (int r = r0; r < r1;) {
            int nr = r1 - r >= rows_for(n) ? rows_for(n) : 1;
            if (!fp8) { /* rows with out-of-range FP4 scales go exact, one by one */
                int ok = 0;
                while (ok < nr && fp4_row_ok((const uint8_t *)W->scale + (size_t)(r + ok) * (cols / 32), cols / 32)) ok++;
                if (ok == 0) {
                    exact_row(W, r, in->x, in->ldx, n, y + (r - r0), ldy, wrow);
                    r++;
                    continue;
                }
                if (ok < nr) nr = 1;
            }
#define GEMV_ROWS(NR, NT, ...) gemv_rows(W, r, 1, NR, NT, xs, 0, y + (r - r0), ldy)
            FEW_TOKENS(GEMV_ROWS, nr, n, 0);
#undef GEMV_ROWS
            r += nr;
        }
        return;
    }
    /* Several tokens: decode the rows once into a panel, then micro-tiles,
     * column block by column block. */
    uint16_t *P = scratch;
    int nr = r1 - r0;
    decode_panel(W, r0, nr, P);
    __m512d *dsum = (__m512d *)(((uintptr_t)(P + (size_t)(nr + MR + 2) * cols) + 63) & ~(uintptr_t)63);
    /* While the tiles run, bring the rows the thread takes next (matmul
     * hands each thread consecutive spans) into L2 for the next decode. */
    size_t tiles = (size_t)((n + MT - 1) / MT) * ((cols + K_BLOCK - 1) / K_BLOCK) * ((nr + MR - 1) / MR);
    block_prefetch pf = block_prefetch_start(W->data, fp8 ? (size_t)cols : (size_t)cols / 2, r1, W->rows - r1 < nr ? W->rows - r1 : nr, tiles);
    for (panel_tile p = {0}; panel_next(&p, n, nr, cols);) {
        block_prefetch_step(&pf);
        const uint16_t *Pi = P + (size_t)p.i * cols + p.k0, *Xk = in->xb + (size_t)p.t0 * cols + p.k0;
        float *yt = y + (size_t)p.t0 * ldy + p.i;
        __m512d *ds = dsum + (size_t)p.i * MT;
#define MICRO(NT) micro(Pi, cols, Xk, NT, p.kcols, ds, p.first, p.last, yt, ldy, p.rows)
        TILE_TOKENS(p.nt, MICRO);
#undef MICRO
    }
    if (!fp8) /* FP4 rows whose scales the panel could not hold exactly */
        for (int r = r0; r < r1; r++)
            if (!fp4_row_ok((const uint8_t *)W->scale + (size_t)r * (cols / 32), cols / 32))
                exact_row(W, r, in->x, in->ldx, n, y + (r - r0), ldy, (float *)(P + (size_t)(nr + MR) * cols));
}

/* ---- one token: streams -------------------------------------------------- */
/* One token reads each weight once, so it runs at the speed the memory
 * delivers rows. Adjacent rows read side by side are short streams that
 * end after one row: the hardware prefetcher restarts on each. Measured on
 * Zen 5 (2 cores, bf16 dot over 8 KB rows): 8 adjacent rows 36-47 GB/s, a
 * plain read 50-67, STREAMS long sequential streams per thread 58-69. So a
 * thread splits its rows into STREAMS consecutive sub-spans and takes one
 * row of each per pass. Every output keeps its chain (gemv_rows). */

/* Whether every row of [r0, r1) can take the stream path: FP8 blocks with
 * scales in range (FP4 rows are checked pass by pass). */
DOT static int stream_blocks_ok(const v4c_matrix *W, int r0, int r1) {
    if (W->kind != WK_FP8) return 1;
    for (int b = r0 / 128; b * 128 < r1; b++)
        if (!fp8_block_ok(W, b * 128)) return 0;
    return 1;
}

DOT static int fp4_rows_ok(const v4c_matrix *W, int r, int rs, int nr) {
    for (int i = 0; i < nr; i++)
        if (!fp4_row_ok((const uint8_t *)W->scale + (size_t)(r + i * rs) * (W->cols / 32), W->cols / 32)) return 0;
    return 1;
}

/* K(STREAMS, NT) for nt = 1..4 tokens, NT a constant: STREAMS streams at
 * every count (STREAMS * NT <= VA). With 2 streams at 3-4 tokens (8 chains
 * of 4 dependent dot products per 128 columns) a pass waited on the
 * products' latency: FP8 4096 x 8192 at 4 tokens from memory 146-149 ->
 * 197-218 GFLOP/s, FP4 2048 x 4096 221-232 -> 244-246, alternating builds. */
#define STREAM_SHAPES(K, nt)                                                                                                              \
    do {                                                                                                                                  \
        switch (nt) {                                                                                                                     \
        case 1: K(STREAMS, 1); break;                                                                                                     \
        case 2: K(STREAMS, 2); break;                                                                                                     \
        case 3: K(STREAMS, 3); break;                                                                                                     \
        default: K(STREAMS, 4); break;                                                                                                    \
        }                                                                                                                                 \
    } while (0)

/* FP8 rows, one or more tokens: the streams of each 128-row block in turn,
 * sharing the block's scaled x. Copies of x per stream would not fit in L1
 * beside the streams on long rows (4 x 16 KB at 8192 columns; measured 43
 * -> 40 GB/s at 4096 x 8192). */
DOT static void fp8_block_streams(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    int n = in->n, S = STREAMS;
    uint16_t *xs = scratch, *rest = xs + (size_t)n * W->cols;
    for (int a = r0; a < r1;) {
        int b = (a / 128 + 1) * 128 < r1 ? (a / 128 + 1) * 128 : r1, per = (b - a) / S, tail = a + S * per;
        if (per) fp8_scale_input(W, a, in->xb, n, xs);
        for (int j = 0; j < per; j++) {
#define BLOCK_ROWS(NR, NT) gemv_rows(W, a + j, per, NR, NT, xs, 0, y + (a - r0) + j, ldy)
            STREAM_SHAPES(BLOCK_ROWS, n);
#undef BLOCK_ROWS
        }
        if (tail < b) dot_rows(W, tail, b, in, y + (tail - r0), ldy, rest);
        a = b;
    }
}

/* 5..8 tokens (NT) of FP8/FP4: x of 8 tokens no longer fits in L1 beside
 * the rows, so column-blocked streams (avx512_fast.h) of KB_ROWS rows
 * inside one FP8 row block, with x packed step by step (rows of x 2 * cols
 * bytes apart share L1 sets). The chains are gemv_rows' for NT tokens.
 * A block with extreme FP4 scales goes through dot_rows. */
INLINE void dot_kblock(const v4c_matrix *W, int r0, int r1, const dot_input *in, int NT, float *y, int ldy, void *scratch) {
    int cols = W->cols, fp8 = W->kind == WK_FP8, sw = fp8 ? 64 : 128, steps = cols / sw, period = fp8 ? FLUSH_CHUNKS / 2 : FLUSH_CHUNKS / 4;
    size_t row_bytes = fp8 ? (size_t)cols : (size_t)cols / 2;
    __m512d *ds = scratch;                           /* KB_ROWS x 8 double sums */
    uint16_t *xs = (uint16_t *)(ds + KB_ROWS * 8);   /* FP8: x with the block's scales */
    uint16_t *xp = xs + (size_t)NT * cols;           /* x packed: [step][token][sw] */
    void *rest = xp + (size_t)NT * cols;
    fp8_tables T8 = fp8_tables_load();
    fp4_tables T4 = fp4_tables_load();
    int packed_block = -1;
    for (int rb = r0; rb < r1;) {
        int end = fp8 ? (rb / 128 + 1) * 128 : r1, nr = end - rb < KB_ROWS ? end - rb : KB_ROWS;
        if (nr > r1 - rb) nr = r1 - rb;
        if (!fp8 && !fp4_rows_ok(W, rb, 1, nr)) {
            dot_rows(W, rb, rb + nr, in, y + (rb - r0), ldy, rest);
            rb += nr;
            continue;
        }
        if (packed_block != (fp8 ? rb / 128 : 0)) { /* x for this block, packed */
            const uint16_t *src = in->xb;
            if (fp8) fp8_scale_input(W, rb, in->xb, NT, xs), src = xs;
            for (int g = 0; g < steps; g++)
                for (int t = 0; t < NT; t++) memcpy(xp + ((size_t)g * NT + t) * sw, src + (size_t)t * cols + (size_t)g * sw, sw * 2);
            packed_block = fp8 ? rb / 128 : 0;
        }
        block_prefetch pf = block_prefetch_start(W->data, row_bytes, rb + nr, block_after(rb, nr, r1), (size_t)nr * ((steps + period - 1) / period));
        for (int g0 = 0; g0 < steps; g0 += period) {
            int g1 = g0 + period < steps ? g0 + period : steps;
            for (int i = 0; i < nr; i++) {
                block_prefetch_step(&pf);
                __m512 acc[8];
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
                if (fp8) {
                    const uint8_t *w = (const uint8_t *)W->data + (size_t)(rb + i) * cols;
                    for (int g = g0; g < g1; g++) {
                        __m512i w0, w1;
                        fp8_decode(&T8, w + 64 * g, &w0, &w1);
                        const uint16_t *xg = xp + (size_t)g * NT * 64;
                        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                            acc[t] = DP(DP(acc[t], w0, _mm512_loadu_si512(xg + 64 * t)), w1, _mm512_loadu_si512(xg + 64 * t + 32));
                    }
                } else {
                    fp4_row R = {(const uint8_t *)W->data + (size_t)(rb + i) * (cols / 2), (const uint8_t *)W->scale + (size_t)(rb + i) * (cols / 32)};
                    for (int g = g0; g < g1; g++) {
                        __m512i c[4];
                        fp4_decode(&T4, &R, g, c);
                        __m512i e7 = fp4_scale_words(&R, g);
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) c[q] = bf16_scale(c[q], e7);
                        const uint16_t *xg = xp + (size_t)g * NT * 128;
                        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) acc[t] = DP(acc[t], c[q], _mm512_loadu_si512(xg + 128 * t + 32 * q));
                    }
                }
                block_flush(acc, ds + (size_t)i * 8, NT, g0 == 0);
            }
        }
        block_store(ds, nr, NT, y + (rb - r0), ldy);
        rb += nr;
    }
}

/* One row of each of S streams per pass over [r0, r1): FP4 with x as it
 * is, FP8 (one token, rows of up to 2048 columns) with each stream's own
 * copy of x scaled for its row block. Returns where the rows it left
 * (fewer than S) begin. */
DOT static int row_streams(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    int n = in->n, S = STREAMS, per = (r1 - r0) / S, fp8 = W->kind == WK_FP8;
    uint16_t *xs = scratch;
    for (int j = 0; j < per; j++) {
        int r = r0 + j;
        if (fp8) {
            for (int s = 0; s < S; s++)
                if (j == 0 || (r + s * per) % 128 == 0) fp8_scale_input(W, r + s * per, in->xb, 1, xs + (size_t)s * W->cols);
        } else if (!fp4_rows_ok(W, r, per, S)) { /* a row with extreme scales: this pass row by row */
            for (int s = 0; s < S; s++) dot_rows(W, r + s * per, r + s * per + 1, in, y + j + s * per, ldy, scratch);
            continue;
        }
#define STREAM_ROWS(NR, NT) gemv_rows(W, r, per, NR, NT, fp8 ? xs : in->xb, fp8 ? (size_t)W->cols : 0, y + j, ldy)
        STREAM_SHAPES(STREAM_ROWS, n);
#undef STREAM_ROWS
    }
    return r0 + S * per;
}

/* Up to 8 tokens of FP8/FP4 with a quantized input (xb): 1-4 by row
 * streams (FP8 with several tokens or long rows block by block), 5-8
 * column-blocked; what they leave, and inputs they cannot take, as
 * matmul's row tiles would (dot_rows, panels of at most 64 rows). */
DOT static void dot_stream(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    int n = in->n, rest = r0;
    if (in->xb && n <= STREAM_TOKENS && stream_blocks_ok(W, r0, r1)) {
        if (n > 4) {
            switch (n) {
            case 5: dot_kblock(W, r0, r1, in, 5, y, ldy, scratch); break;
            case 6: dot_kblock(W, r0, r1, in, 6, y, ldy, scratch); break;
            case 7: dot_kblock(W, r0, r1, in, 7, y, ldy, scratch); break;
            default: dot_kblock(W, r0, r1, in, 8, y, ldy, scratch); break;
            }
            rest = r1;
        } else if (W->kind == WK_FP8 && (W->cols > 2048 || n > 1)) {
            fp8_block_streams(W, r0, r1, in, y, ldy, scratch);
            rest = r1;
        } else {
            rest = row_streams(W, r0, r1, in, y, ldy, scratch);
        }
    }
    for (int a = rest; a < r1; a += 64)
        dot_rows(W, a, a + 64 < r1 ? a + 64 : r1, in, y + (a - r0), ldy, scratch);
}

void dot_rows(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    if (W->panels) {
        dot_panels(W, r0, r1, in, y, ldy, scratch);
        return;
    }
    /* FP8 scales change every 128 rows: keep each span inside one block. */
    for (int a = r0; a < r1;) {
        int b = W->kind == WK_FP8 ? (a / 128 + 1) * 128 : r1;
        if (b > r1) b = r1;
        rows_span(W, a, b, in, y + (a - r0), ldy, scratch);
        a = b;
    }
}

/* By streams: up to 8 tokens of FP8/FP4 with a quantized input or (wo_a)
 * a float input, up to STREAM_TOKENS of F32/BF16 (gemv_avx512_float.c);
 * what they leave as for a batch. */
void fast_stream(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    if (W->panels && matrix_quantizes_input(W)) {
        dot_panels(W, r0, r1, in, y, ldy, scratch);
    } else if (in->xb) {
        dot_stream(W, r0, r1, in, y, ldy, scratch);
    } else if (in->xf) {
        int ok = W->cols % 64 == 0 && stream_blocks_ok(W, r0, r1), rest = r0;
        if (ok && in->n == 1 && in->xf_scalable) rest = fp8_float_block_streams(W, r0, r1, in->xf, y, scratch);
        else if (ok && in->n == 1) rest = fp8_float_stream(W, r0, r1, in->xf, y);
        else if (ok && in->n == 2) rest = fp8_float_stream2(W, r0, r1, in->xf, y, ldy);
        else if (ok) fp8_float_kblock(W, r0, r1, in->xf, in->xf_scalable, in->n, y, ldy, scratch), rest = r1;
        if (rest < r1) dot_rows(W, rest, r1, in, y + (rest - r0), ldy, scratch);
    } else {
        float_stream(W, r0, r1, in->x, in->ldx, in->n, y, ldy, scratch);
    }
}

/* FP8/FP4 matrices the dot path cannot take (columns not a multiple of 64,
 * float scales) run the exact kernels. */

const kernel_backend backend_avx512_fast = {
    "avx512", {fast_rows_float, fast_rows_float, NULL, NULL}, dot_rows, fast_stream, &backend_avx512, 1};
