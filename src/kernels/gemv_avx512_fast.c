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
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/avx512_fast.h"

uint8_t fast_fp8_hi[128], fast_fp8_lo[128];
static uint16_t fp4_scaled[256][16]; /* bf16 of e2m1 code x 2^(s - 127), per e8m0 byte s */

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
        fast_fp8_hi[m] = (uint8_t)(b >> 8), fast_fp8_lo[m] = (uint8_t)b;
    }
    for (int s = 127 - EXP_LIMIT; s <= 127 + EXP_LIMIT; s++) /* other scales take the exact kernels */
        for (int i = 0; i < 16; i++) fp4_scaled[s][i] = f32_to_bf16_exact(ldexpf(e2m1_table[i], s - 127));
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
    fast_tables_init();
    if (cols % 64) return 0;
    for (int t = 0; t < n; t++) {
        uint16_t *o = xb + (size_t)t * cols;
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

/* ---- decoders ---------------------------------------------------------- */

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
    store_sums(ds, NR, NT, NT, NR, y, ldy);
}

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
    store_sums(&ds[0][0], MR, NT, MT, nr, y, ldy);
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
    "avx512", {fast_rows_float, fast_rows_float, NULL, NULL}, dot_rows, &backend_avx512};
