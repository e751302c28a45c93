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
 * flushed to double after every 16th chunk and at the end, with the weight
 * chunk W_r[c] scaled (FP4) and the scale of FP8 folded into x (one token)
 * or into the weights (several): both exact, so one token and a batch give
 * bit-identical results (chunked prefill equals token-by-token decode).
 *
 * Column order inside a 64-column step follows the decoders:
 *   FP8: bytes -> (lo, hi) byte tables -> unpacklo/unpackhi, so chunk h of
 *        step g holds columns 64g + 16L + 8h + i (L = word / 8, i = word % 8);
 *   FP4: 32 bytes -> 32 words; low nibbles (even columns) form chunk 0, high
 *        nibbles (odd columns) chunk 1: word j is column 64g + 2j + h.
 * x is laid out in the same order once per call (dot_prepare). */
#include <immintrin.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/backend.h"

#define DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vbmi")))
#define INLINE DOT static inline __attribute__((always_inline))

enum {
    FLUSH_CHUNKS = 16, /* 512 columns: 32 products per float lane */
    MR = 4,            /* rows per micro-tile (panel rows padded to it) */
    VR = 8,            /* rows decoded together for one token: more streams, fewer flushes per byte */
    VA = 8,            /* accumulators of a few-token pass (rows x tokens) */
    FEW = 4,           /* up to this many tokens, rows are decoded on the fly; more go through a panel (measured faster from 5) */
    FEW_SHORT = 8,     /* the same for short rows (<= 1024 columns), where a panel's per-output costs weigh more */
    MT = DOT_TOKENS,   /* tokens per micro-tile */
    EXP_LIMIT = 40,    /* |log2| of scales and inputs kept far from the float range ends */
};

static uint8_t fp8_hi[128], fp8_lo[128]; /* bf16 bytes of e4m3 magnitude codes */
static uint16_t fp4_scaled[256][16];     /* bf16 of e2m1 code x 2^(s - 127), per e8m0 byte s */

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

static void init_tables(void) {
    for (int m = 0; m < 128; m++) {
        uint16_t b = f32_to_bf16_exact(e4m3_magnitude(m));
        fp8_hi[m] = (uint8_t)(b >> 8), fp8_lo[m] = (uint8_t)b;
    }
    for (int s = 127 - EXP_LIMIT; s <= 127 + EXP_LIMIT; s++) /* other scales take the exact kernels */
        for (int i = 0; i < 16; i++) fp4_scaled[s][i] = f32_to_bf16_exact(ldexpf(e2m1_table[i], s - 127));
}

int dot_supported(void) {
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi");
}

/* ---- inputs ------------------------------------------------------------ */

/* Column of word j in chunk h of a 64-column step, per kind. */
static int chunk_column(weight_kind kind, int h, int j) {
    return kind == WK_FP8 ? 16 * (j / 8) + 8 * h + j % 8 : 2 * j + h;
}

static int bf16_ok(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if (u & 0xFFFF) return 0; /* not exactly a bf16 */
    if (!(u & 0x7FFFFFFF)) return 1;
    int e = (int)((u >> 23) & 0xFF) - 127;
    return e >= -EXP_LIMIT && e <= EXP_LIMIT;
}

int dot_prepare(weight_kind kind, const float *x, int ldx, int n, int cols, uint16_t *xb) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_tables);
    if (cols % 64) return 0;
    int n_pad = (n + MT - 1) / MT * MT;
    for (int t = 0; t < n_pad; t++) {
        uint16_t *o = xb + (size_t)t * cols;
        if (t >= n) {
            memset(o, 0, (size_t)cols * 2);
            continue;
        }
        const float *xt = x + (size_t)t * ldx;
        for (int g = 0; g < cols; g += 64)
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < 32; j++) {
                    float v = xt[g + chunk_column(kind, h, j)];
                    if (!bf16_ok(v)) return 0;
                    o[g + 32 * h + j] = f32_to_bf16_exact(v);
                }
    }
    return 1;
}

/* ---- decoders: one 64-column step of a row into two bf16 chunks --------- */

typedef struct {
    __m512i hi0, hi1, lo0, lo1, sign;
} fp8_tables;

INLINE fp8_tables fp8_tables_load(void) {
    fp8_tables t = {_mm512_loadu_si512(fp8_hi), _mm512_loadu_si512(fp8_hi + 64), _mm512_loadu_si512(fp8_lo),
                    _mm512_loadu_si512(fp8_lo + 64), _mm512_set1_epi8((char)0x80)};
    return t;
}

INLINE void fp8_decode(const fp8_tables *T, const uint8_t *p, __m512i *w0, __m512i *w1) {
    __m512i b = _mm512_loadu_si512(p);
    __m512i hb = _mm512_permutex2var_epi8(T->hi0, b, T->hi1); /* index bits 0-6: the magnitude */
    hb = _mm512_ternarylogic_epi32(hb, b, T->sign, 0xF8);       /* hb | (b & 0x80) */
    __m512i lb = _mm512_permutex2var_epi8(T->lo0, b, T->lo1);
    *w0 = _mm512_unpacklo_epi8(lb, hb);
    *w1 = _mm512_unpackhi_epi8(lb, hb);
}

/* Multiply the nonzero bf16 words of v by 2^e (e already shifted by 7). */
INLINE __m512i bf16_scale(__m512i v, __m512i e7) {
    __mmask32 nz = _mm512_test_epi16_mask(v, _mm512_set1_epi16(0x7FFF));
    return _mm512_mask_add_epi16(v, nz, v, e7);
}

/* FP4 row: packed codes and one e8m0 scale per 32 columns. */
typedef struct {
    const uint8_t *codes, *scales;
} fp4_row;

/* Whether every scale exponent of the row is within EXP_LIMIT. */
INLINE int fp4_row_ok(const uint8_t *scales, int groups) {
    for (int q = 0; q < groups; q += 32) {
        __mmask32 m = groups - q >= 32 ? 0xFFFFFFFFu : (1u << (groups - q)) - 1;
        __m512i e = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, scales + q)), _mm512_set1_epi16(127));
        __mmask32 bad = _mm512_mask_cmpgt_epi16_mask(m, e, _mm512_set1_epi16(EXP_LIMIT)) |
                        _mm512_mask_cmplt_epi16_mask(m, e, _mm512_set1_epi16(-EXP_LIMIT));
        if (bad) return 0;
    }
    return 1;
}

/* The vpermw table of a step: words 0-15 the scaled codes of group 2g,
 * 16-31 those of group 2g+1 (two loads from fp4_scaled). */
INLINE void fp4_decode(const fp4_row *R, int g, __m512i *w0, __m512i *w1) {
    __m512i table = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)fp4_scaled[R->scales[2 * g]])),
                                       _mm256_loadu_si256((const __m256i *)fp4_scaled[R->scales[2 * g + 1]]), 1);
    __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(R->codes + 32 * g)));
    __m512i half = _mm512_set_epi64(0x0010001000100010LL, 0x0010001000100010LL, 0x0010001000100010LL, 0x0010001000100010LL, 0, 0, 0, 0);
    __m512i lo = _mm512_ternarylogic_epi32(v, _mm512_set1_epi16(15), half, 0xEA); /* (v & 15) | half */
    __m512i hi = _mm512_or_si512(_mm512_srli_epi16(v, 4), half);
    *w0 = _mm512_permutexvar_epi16(lo, table);
    *w1 = _mm512_permutexvar_epi16(hi, table);
}

/* ---- chains -------------------------------------------------------------- */

#define DP(acc, w, x) _mm512_dpbf16_ps((acc), (__m512bh)(w), (__m512bh)(x))

/* One token streams short rows, which the hardware prefetcher picks up
 * late: while a group of rows (`bytes` from `group`) is being read, step s
 * of `steps` brings the matching slice of the next group into L2. */
INLINE void prefetch_next(const void *group, size_t bytes, int s, int steps) {
    size_t slice = (bytes + steps - 1) / steps;
    const char *p = (const char *)group + bytes + (size_t)s * slice;
    for (size_t o = 0; o < slice; o += 64) _mm_prefetch(p + o, _MM_HINT_T1);
}

/* Lanes l and l+8 are added in float, then the 8 sums in double. */
INLINE void flush(__m512 *acc, __m512d *ds) {
    __m256 half = _mm256_add_ps(_mm512_castps512_ps256(*acc), _mm512_extractf32x8_ps(*acc, 1));
    *ds = _mm512_add_pd(*ds, _mm512_cvtps_pd(half));
    *acc = _mm512_setzero_ps();
}

INLINE float finish(__m512d ds) { return (float)_mm512_reduce_add_pd(ds); }

/* finish() of 8 vectors at once, bit for bit: the same pairings as
 * _mm512_reduce_add_pd ((hi 256 + lo 256), then (hi 128 + lo 128), then the
 * two lanes), done on transposed pairs. Short rows pay less per output. */
INLINE void finish8(const __m512d *a, float *out) {
    __m512d u[4], v[2];
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)
        u[k] = _mm512_add_pd(_mm512_shuffle_f64x2(a[2 * k], a[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)),
                             _mm512_shuffle_f64x2(a[2 * k], a[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)));
    _Pragma("GCC unroll 2") for (int k = 0; k < 2; k++)
        v[k] = _mm512_add_pd(_mm512_shuffle_f64x2(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)),
                             _mm512_shuffle_f64x2(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)));
    __m512d w = _mm512_add_pd(_mm512_unpackhi_pd(v[0], v[1]), _mm512_unpacklo_pd(v[0], v[1])); /* f0 f4 f1 f5 f2 f6 f3 f7 */
    __m256 f = _mm256_permutexvar_ps(_mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7), _mm512_cvtpd_ps(w));
    _mm256_storeu_ps(out, f);
}

/* finish() of n vectors into out[0..n). */
INLINE void finish_all(const __m512d *ds, int n, float *out) {
    int a = 0;
    for (; a + 8 <= n; a += 8) finish8(ds + a, out + a);
    for (; a < n; a++) out[a] = finish(ds[a]);
}

/* NR rows x NT tokens (NR * NT <= VA) decoded on the fly, for one token or
 * a few: each decoded chunk serves all NT. xs: [NT][cols] in chunk order,
 * with the FP8 block scales already folded in (FP4: plain x). */
INLINE void gemv_rows(const v4c_matrix *W, int r, int NR, int NT, const uint16_t *xs, float *y, int ldy) {
    int cols = W->cols, steps = cols / 64, groups = cols / 32;
    __m512 acc[VA];
    __m512d ds[VA];
    _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) acc[a] = _mm512_setzero_ps(), ds[a] = _mm512_setzero_pd();
    if (W->kind == WK_FP8) {
        fp8_tables T = fp8_tables_load();
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * cols;
        for (int g = 0; g < steps; g++) {
            prefetch_next(w, (size_t)NR * cols, g, steps);
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                __m512i w0, w1;
                fp8_decode(&T, w + (size_t)i * cols + 64 * g, &w0, &w1);
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                    const uint16_t *xt = xs + (size_t)t * cols + 64 * g;
                    acc[i * NT + t] = DP(DP(acc[i * NT + t], w0, _mm512_loadu_si512(xt)), w1, _mm512_loadu_si512(xt + 32));
                }
            }
            if (g % (FLUSH_CHUNKS / 2) == FLUSH_CHUNKS / 2 - 1 || g == steps - 1)
                _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
        }
    } else {
        fp4_row R[VR];
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            R[i].codes = (const uint8_t *)W->data + (size_t)(r + i) * (cols / 2);
            R[i].scales = (const uint8_t *)W->scale + (size_t)(r + i) * groups;
        }
        for (int g = 0; g < steps; g++) {
            prefetch_next(R[0].codes, (size_t)NR * (cols / 2), g, steps);
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                __m512i w0, w1;
                fp4_decode(&R[i], g, &w0, &w1);
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                    const uint16_t *xt = xs + (size_t)t * cols + 64 * g;
                    acc[i * NT + t] = DP(DP(acc[i * NT + t], w0, _mm512_loadu_si512(xt)), w1, _mm512_loadu_si512(xt + 32));
                }
            }
            if (g % (FLUSH_CHUNKS / 2) == FLUSH_CHUNKS / 2 - 1 || g == steps - 1)
                _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
        }
    }
    float out[VA];
    finish_all(ds, NR * NT, out);
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
        y[(size_t)t * ldy + i] = out[i * NT + t];
}

/* Rows per pass for NT tokens on the fly: NR * NT <= VR (more accumulators
 * spill: measured slower). */
static inline int rows_for(int nt) { return nt == 1 ? 8 : nt == 2 ? 4 : nt <= 4 ? 2 : 1; }

/* Dispatch of a kernel K(args..., NR, NT, ...) over its constant shapes:
 * full passes of rows_for(nt) rows, then single rows. */
#define FEW_TOKENS(K, nr, nt, ...)                                                                                                        \
    do {                                                                                                                                  \
        int full_ = (nr) == rows_for(nt);                                                                                                 \
        switch ((nt) * 2 + full_) {                                                                                                       \
        case 3: K(8, 1, __VA_ARGS__); break;                                                                                              \
        case 5: K(4, 2, __VA_ARGS__); break;                                                                                              \
        case 7: K(2, 3, __VA_ARGS__); break;                                                                                              \
        case 9: K(2, 4, __VA_ARGS__); break;                                                                                              \
        case 2: K(1, 1, __VA_ARGS__); break;                                                                                              \
        case 4: K(1, 2, __VA_ARGS__); break;                                                                                              \
        case 6: K(1, 3, __VA_ARGS__); break;                                                                                              \
        case 8: K(1, 4, __VA_ARGS__); break;                                                                                              \
        case 10: case 11: K(1, 5, __VA_ARGS__); break;                                                                                    \
        case 12: case 13: K(1, 6, __VA_ARGS__); break;                                                                                    \
        case 14: case 15: K(1, 7, __VA_ARGS__); break;                                                                                    \
        default: K(1, 8, __VA_ARGS__); break;                                                                                             \
        }                                                                                                                                 \
    } while (0)

/* MR panel rows x NT tokens over all chunks, same chain as gemv_rows. */
INLINE void micro(const uint16_t *P, int cols, const uint16_t *X, int NT, float *y, int ldy, int nr) {
    int chunks = cols / 32;
    __m512 acc[MR][MT];
    __m512d ds[MR][MT]; /* spilled to the stack: touched once per flush */
    _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
        acc[i][t] = _mm512_setzero_ps();
        ds[i][t] = _mm512_setzero_pd();
    }
    for (int c = 0; c < chunks; c++) {
        __m512i w[MR];
        _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) w[i] = _mm512_loadu_si512(P + (size_t)i * cols + 32 * c);
        _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
            __m512i x = _mm512_loadu_si512(X + (size_t)t * cols + 32 * c);
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) acc[i][t] = DP(acc[i][t], w[i], x);
        }
        if (c % FLUSH_CHUNKS == FLUSH_CHUNKS - 1 || c == chunks - 1)
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++)
                flush(&acc[i][t], &ds[i][t]);
    }
    float out[MR * MT];
    if (NT == MT) finish_all(&ds[0][0], MR * MT, out);
    else _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) out[i * MT + t] = finish(ds[i][t]);
    _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) if (i < nr) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++)
        y[(size_t)t * ldy + i] = out[i * MT + t];
}

/* Decode rows [r, r+nr) into a bf16 panel (scales folded in), zero rows up
 * to MR-multiple. */
DOT static void decode_panel(const v4c_matrix *W, int r, int nr, uint16_t *P) {
    int cols = W->cols, steps = cols / 64, groups = cols / 32, padded = (nr + MR - 1) / MR * MR;
    fp8_tables T = fp8_tables_load();
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
            for (int g = 0; g < steps; g++) {
                __m512i w0, w1;
                fp4_decode(&R, g, &w0, &w1);
                _mm512_storeu_si512(o + 64 * g, w0);
                _mm512_storeu_si512(o + 64 * g + 32, w1);
            }
        }
    }
    memset(P + (size_t)nr * cols, 0, (size_t)(padded - nr) * cols * 2);
}

/* ---- exact fallback for one row (scales out of range) -------------------- */

static void exact_row(const v4c_matrix *W, int r, const float *x, int ldx, int n, float *y, int ldy, float *wrow) {
    matrix_row_f32(W, r, wrow);
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * ldx;
        double s = 0;
        for (int k = 0; k < W->cols; k++) s += (double)wrow[k] * xt[k];
        y[(size_t)t * ldy] = (float)s;
    }
}

DOT static int fp8_block_ok(const v4c_matrix *W, int r) {
    const uint8_t *sc = (const uint8_t *)W->scale + (size_t)(r / 128) * ((W->cols + 127) / 128);
    for (int b = 0; b < (W->cols + 127) / 128; b++)
        if (sc[b] < 127 - EXP_LIMIT || sc[b] > 127 + EXP_LIMIT) return 0;
    return 1;
}

/* ---- float inputs: float32 FMA chains, flushed like the above ----------- */
/* F32 and BF16 weights, decoded to floats in column order. Output (r, t) is the chain
 * acc = fma(W_r[16 columns], x_t[same], acc), flushed every 32 steps, for a
 * token alone (rows decoded on the fly) or a batch (rows decoded into a
 * float panel first). */

enum { F_STEPS = 32, F_PANEL = 16 /* most rows per float panel (the scratch holds 16) */ };

/* Rows per float panel: at most 256 KB, so the panel stays in L2 while
 * every token group reads it (mHC's 16K-column mixes get 4 rows). */
static inline int panel_rows(int cols) {
    int rows = 65536 / cols / MR * MR;
    return rows < MR ? MR : rows > F_PANEL ? F_PANEL : rows;
}

/* 16 weights of row r from column k. */
INLINE __m512 decode16(const v4c_matrix *W, int r, int k) {
    size_t at = (size_t)r * W->cols + k;
    if (W->kind == WK_F32) return _mm512_loadu_ps((const float *)W->data + at);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)W->data + at));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* NR rows x NT tokens (NR * NT <= VA) decoded on the fly. */
INLINE void float_rows(const v4c_matrix *W, int r, int NR, int NT, const float *x, int ldx, float *y, int ldy) {
    int steps = W->cols / 16;
    __m512 acc[VA];
    __m512d ds[VA];
    _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) acc[a] = _mm512_setzero_ps(), ds[a] = _mm512_setzero_pd();
    size_t row_bytes = (size_t)W->cols * (W->kind == WK_F32 ? 4 : 2);
    for (int s = 0; s < steps; s++) {
        prefetch_next((const char *)W->data + (size_t)r * row_bytes, (size_t)NR * row_bytes, s, steps);
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            __m512 w = decode16(W, r + i, 16 * s);
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                acc[i * NT + t] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + (size_t)t * ldx + 16 * s), acc[i * NT + t]);
        }
        if (s % F_STEPS == F_STEPS - 1 || s == steps - 1)
            _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
    }
    float out[VA];
    finish_all(ds, NR * NT, out);
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
        y[(size_t)t * ldy + i] = out[i * NT + t];
}

/* MR panel rows (stride cols) x NT tokens of float x (stride ldx). */
INLINE void micro_f32(const float *P, int cols, const float *X, int ldx, int NT, float *y, int ldy, int nr) {
    int steps = cols / 16;
    __m512 acc[MR][MT];
    __m512d ds[MR][MT];
    _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
        acc[i][t] = _mm512_setzero_ps();
        ds[i][t] = _mm512_setzero_pd();
    }
    for (int s = 0; s < steps; s++) {
        __m512 w[MR];
        _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) w[i] = _mm512_loadu_ps(P + (size_t)i * cols + 16 * s);
        _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
            __m512 xv = _mm512_loadu_ps(X + (size_t)t * ldx + 16 * s);
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) acc[i][t] = _mm512_fmadd_ps(w[i], xv, acc[i][t]);
        }
        if (s % F_STEPS == F_STEPS - 1 || s == steps - 1)
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++)
                flush(&acc[i][t], &ds[i][t]);
    }
    float out[MR * MT];
    if (NT == MT) finish_all(&ds[0][0], MR * MT, out);
    else _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) out[i * MT + t] = finish(ds[i][t]);
    _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) if (i < nr) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++)
        y[(size_t)t * ldy + i] = out[i * MT + t];
}

/* A decoded float panel of nr rows against n tokens of x, in micro-tiles. */
DOT static void panel_tiles_f32(const float *panel, int nr, int cols, const float *x, int ldx, int n, float *y, int ldy) {
    for (int t0 = 0; t0 < n; t0 += MT) {
        int nt = n - t0 < MT ? n - t0 : MT;
        const float *X = x + (size_t)t0 * ldx;
        for (int i = 0; i < nr; i += MR) {
            float *yt = y + (size_t)t0 * ldy + i;
            int rows = nr - i < MR ? nr - i : MR;
            const float *Pi = panel + (size_t)i * cols;
            switch (nt) {
            case 1: micro_f32(Pi, cols, X, ldx, 1, yt, ldy, rows); break;
            case 2: micro_f32(Pi, cols, X, ldx, 2, yt, ldy, rows); break;
            case 3: micro_f32(Pi, cols, X, ldx, 3, yt, ldy, rows); break;
            case 4: micro_f32(Pi, cols, X, ldx, 4, yt, ldy, rows); break;
            case 5: micro_f32(Pi, cols, X, ldx, 5, yt, ldy, rows); break;
            default: micro_f32(Pi, cols, X, ldx, 6, yt, ldy, rows); break;
            }
        }
    }
}

DOT static void float_span(const v4c_matrix *W, int r0, int r1, const float *x, int ldx, int n, float *y, int ldy, float *panel) {
    int cols = W->cols;
    if (n <= (cols <= 1024 ? FEW_SHORT : FEW)) { /* a few tokens: rows decoded on the fly */
        for (int r = r0; r < r1;) {
            int nr = r1 - r >= rows_for(n) ? rows_for(n) : 1;
#define FLOAT_ROWS(NR, NT, ...) float_rows(W, r, NR, NT, x, ldx, y + (r - r0), ldy)
            FEW_TOKENS(FLOAT_ROWS, nr, n, 0);
#undef FLOAT_ROWS
            r += nr;
        }
        return;
    }
    for (int p0 = r0, pr = panel_rows(cols); p0 < r1; p0 += pr) {
        int nr = r1 - p0 < pr ? r1 - p0 : pr, padded = (nr + MR - 1) / MR * MR;
        for (int i = 0; i < padded; i++)
            for (int k = 0; k < cols; k += 16)
                _mm512_storeu_ps(panel + (size_t)i * cols + k, i < nr ? decode16(W, p0 + i, k) : _mm512_setzero_ps());
        panel_tiles_f32(panel, nr, cols, x, ldx, n, y + (p0 - r0), ldy);
    }
}

DOT static void rows_float(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy,
                           double *scratch) {
    if (W->cols % 16) { /* the exact kernel, with the double inputs matmul leaves to this backend */
        double *own = xd ? NULL : matmul_prepare_input(W->kind, x, ldx, n, W->cols);
        backend_avx512.rows[W->kind](W, r0, r1, x, xd ? xd : own, ldx, n, y, ldy, scratch);
        free(own);
    } else {
        float_span(W, r0, r1, x, ldx, n, y, ldy, (float *)scratch);
    }
}

/* ---- FP8 weights with float inputs (wo_a) -------------------------------- */
/* The bf16 byte tables again, widened to floats in lane order: float
 * vector q of a 64-column step holds columns 16L + 4q + i (L = element / 4,
 * i = element % 4); x is laid out the same way by float_prepare. The block
 * scale multiplies the decoded weights of the panel, and x for one token
 * when that is exact: the products, hence the chains, are the same. */

int float_prepare(const float *x, int ldx, int n, int cols, float *xf) {
    int ok = 1; /* every x times a scale within 2^+-EXP_LIMIT stays a normal float */
    for (int t = 0; t < n; t++)
        for (int g = 0; g < cols; g += 64)
            for (int q = 0; q < 4; q++)
                for (int e = 0; e < 16; e++) {
                    float v = x[(size_t)t * ldx + g + 16 * (e / 4) + 4 * q + e % 4];
                    int ex;
                    if (v != 0 && (!isfinite(v) || (frexpf(v, &ex), ex < -80 || ex > 80))) ok = 0;
                    xf[(size_t)t * cols + g + 16 * q + e] = v;
                }
    return ok;
}

INLINE void fp8_decode_f32(const fp8_tables *T, const uint8_t *p, __m512 *f) {
    __m512i w0, w1, z = _mm512_setzero_si512();
    fp8_decode(T, p, &w0, &w1);
    f[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, w0));
    f[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, w0));
    f[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, w1));
    f[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, w1));
}

/* NR rows of one 128-row block x NT tokens (NR * NT <= VA); same chain as
 * micro_f32. With xs_scaled the block scales are already in xs (exact:
 * float_prepare checked the range), else they multiply the weights. */
INLINE void fp8f_rows(const v4c_matrix *W, int r, int NR, int NT, const float *xs, int xs_scaled, float *y, int ldy) {
    int cols = W->cols, steps = cols / 16;
    fp8_tables T = fp8_tables_load();
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r * cols;
    __m512 acc[VA];
    __m512d ds[VA];
    _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) acc[a] = _mm512_setzero_ps(), ds[a] = _mm512_setzero_pd();
    for (int s = 0; s < steps; s += 4) {
        __m512 scale = _mm512_set1_ps(fp8_block_scale(W, r, s / 8));
        prefetch_next(w, (size_t)NR * cols, s / 4, steps / 4);
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            __m512 f[4];
            fp8_decode_f32(&T, w + (size_t)i * cols + 16 * s, f);
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                __m512 wq = xs_scaled ? f[q] : _mm512_mul_ps(f[q], scale);
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                    acc[i * NT + t] = _mm512_fmadd_ps(wq, _mm512_loadu_ps(xs + (size_t)t * cols + 16 * (s + q)), acc[i * NT + t]);
            }
        }
        if ((s + 4) % F_STEPS == 0 || s + 4 == steps)
            _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
    }
    float out[VA];
    finish_all(ds, NR * NT, out);
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
        y[(size_t)t * ldy + i] = out[i * NT + t];
}

DOT static void fp8f_span(const v4c_matrix *W, int r0, int r1, const float *xf, int xf_scalable, int n, float *y, int ldy, float *panel) {
    int cols = W->cols;
    if (n <= (cols <= 1024 ? FEW_SHORT : FEW)) { /* a few tokens: rows decoded on the fly */
        const float *xs = xf;
        if (xf_scalable) { /* this row block's scales into x, once for its rows */
            for (int t = 0; t < n; t++)
                for (int k = 0; k < cols; k += 16)
                    _mm512_storeu_ps(panel + (size_t)t * cols + k,
                                     _mm512_mul_ps(_mm512_loadu_ps(xf + (size_t)t * cols + k), _mm512_set1_ps(fp8_block_scale(W, r0, k / 128))));
            xs = panel;
        }
        for (int r = r0; r < r1;) {
            int nr = r1 - r >= rows_for(n) ? rows_for(n) : 1;
#define FP8F_ROWS(NR, NT, ...) (xf_scalable ? fp8f_rows(W, r, NR, NT, xs, 1, y + (r - r0), ldy) : fp8f_rows(W, r, NR, NT, xs, 0, y + (r - r0), ldy))
            FEW_TOKENS(FP8F_ROWS, nr, n, 0);
#undef FP8F_ROWS
            r += nr;
        }
        return;
    }
    fp8_tables T = fp8_tables_load();
    for (int p0 = r0, pr = panel_rows(cols); p0 < r1; p0 += pr) {
        int nr = r1 - p0 < pr ? r1 - p0 : pr, padded = (nr + MR - 1) / MR * MR;
        for (int i = 0; i < padded; i++)
            for (int k = 0; k < cols; k += 64) {
                __m512 f[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
                if (i < nr) fp8_decode_f32(&T, (const uint8_t *)W->data + (size_t)(p0 + i) * cols + k, f);
                __m512 scale = _mm512_set1_ps(i < nr ? fp8_block_scale(W, p0 + i, k / 128) : 0.0f);
                for (int q = 0; q < 4; q++) _mm512_storeu_ps(panel + (size_t)i * cols + k + 16 * q, _mm512_mul_ps(f[q], scale));
            }
        panel_tiles_f32(panel, nr, cols, xf, cols, n, y + (p0 - r0), ldy);
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
        fp8f_span(W, r0, r1, in->xf, in->xf_scalable, n, y, ldy, scratch);
        return;
    }
    if (n <= (cols <= 1024 ? FEW_SHORT : FEW)) { /* a few tokens: rows decoded on the fly */
        const uint16_t *xs = in->xb;
        if (fp8) { /* fold this row block's scales into x */
            uint16_t *sx = scratch;
            const uint8_t *sc = (const uint8_t *)W->scale + (size_t)(r0 / 128) * ((cols + 127) / 128);
            for (int t = 0; t < n; t++)
                for (int g = 0; g < cols / 64; g++) {
                    __m512i e7 = _mm512_set1_epi16((short)((sc[g / 2] - 127) * 128));
                    for (int h = 0; h < 2; h++) {
                        size_t at = (size_t)t * cols + 64 * g + 32 * h;
                        _mm512_storeu_si512(sx + at, bf16_scale(_mm512_loadu_si512(in->xb + at), e7));
                    }
                }
            xs = sx;
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
#define GEMV_ROWS(NR, NT, ...) gemv_rows(W, r, NR, NT, xs, y + (r - r0), ldy)
            FEW_TOKENS(GEMV_ROWS, nr, n, 0);
#undef GEMV_ROWS
            r += nr;
        }
        return;
    }
    /* Several tokens: decode the rows once into a panel, then micro-tiles. */
    uint16_t *P = scratch;
    int nr = r1 - r0;
    decode_panel(W, r0, nr, P);
    for (int t0 = 0; t0 < n; t0 += MT) {
        int nt = n - t0 < MT ? n - t0 : MT;
        const uint16_t *X = in->xb + (size_t)t0 * cols;
        for (int i = 0; i < nr; i += MR) {
            float *yt = y + (size_t)t0 * ldy + i;
            int rows = nr - i < MR ? nr - i : MR;
            const uint16_t *Pi = P + (size_t)i * cols;
            switch (nt) {
            case 1: micro(Pi, cols, X, 1, yt, ldy, rows); break;
            case 2: micro(Pi, cols, X, 2, yt, ldy, rows); break;
            case 3: micro(Pi, cols, X, 3, yt, ldy, rows); break;
            case 4: micro(Pi, cols, X, 4, yt, ldy, rows); break;
            case 5: micro(Pi, cols, X, 5, yt, ldy, rows); break;
            default: micro(Pi, cols, X, 6, yt, ldy, rows); break;
            }
        }
    }
    if (!fp8) /* FP4 rows whose scales the panel could not hold exactly */
        for (int r = r0; r < r1; r++)
            if (!fp4_row_ok((const uint8_t *)W->scale + (size_t)r * (cols / 32), cols / 32))
                exact_row(W, r, in->x, in->ldx, n, y + (r - r0), ldy, (float *)(P + (size_t)(nr + MR) * cols));
}

void dot_rows(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    /* FP8 scales change every 128 rows: keep each span inside one block. */
    for (int a = r0; a < r1;) {
        int b = W->kind == WK_FP8 ? (a / 128 + 1) * 128 : r1;
        if (b > r1) b = r1;
        rows_span(W, a, b, in, y + (a - r0), ldy, scratch);
        a = b;
    }
}

/* FP8/FP4 matrices the dot path cannot take (columns not a multiple of 64,
 * float scales) run the exact kernels. */
const kernel_backend backend_avx512_fast = {
    "avx512", {rows_float, rows_float, NULL, NULL}, dot_rows, &backend_avx512};
