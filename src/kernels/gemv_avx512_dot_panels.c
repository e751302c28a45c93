/* FP8 and FP4 weights packed in panels (matrix.h: 16 rows to a panel, each
 * 64-byte line 4 FP8 or 8 FP4 columns of those rows, placed so that the
 * decoders of avx512_fast.h give row i's column pair in 32-bit lane i)
 * through BF16 dot products, rows in lanes and each token's column pair
 * broadcast. A decoded line serves every token of a batch, and no sum
 * crosses lanes: at 4-8 tokens a core runs at 84-90% of its dot peak on
 * weights in L1, and the few-token products of a server's batch from
 * memory 1.2-1.9x faster than in the row layout (docs/performance.md).
 *
 * The chain of each output, the same for every token count and path (so
 * one token and a batch give the same bits, as in gemv_avx512_fast.c):
 *   FP8: for each 128-column block a fresh sum s = dp(s, w, x) over its
 *        column pairs in order, of unscaled codes; then acc = acc + s * 2^e
 *        (the block's scale: an exact product, one rounding);
 *   FP4: the same for each 32-column scale group, its pairs in column
 *        order;
 *   acc added to a double every 512 columns, the double rounded to float
 *   at the end.
 * Products are exact (avx512_fast.h's argument), so only these sums round. */
#include <string.h>

#include "kernels/avx512_fast.h"

enum { PANEL_FLUSH = 512, TOKEN_TILE = 8 };

/* acc + w . (the bf16 pair at x, columns c and c + 1, in every lane): the
 * pair as the instruction's broadcast operand. GCC would broadcast it into
 * a register first (one more instruction and register per product). */
INLINE __m512 dp_pair(__m512 acc, __m512i w, const uint16_t *x) {
    __asm__("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const char(*)[4])x));
    return acc;
}

/* acc + w * x[0] in every lane, x[0] the instruction's broadcast operand. */
INLINE __m512 fma_bcast(__m512 acc, __m512 w, const float *x) {
    __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*x));
    return acc;
}

/* The 16 lanes of acc into their doubles (rows 0-7 and 8-15), acc zeroed. */
INLINE void lanes_flush(__m512 *acc, __m512d *d) {
    d[0] = _mm512_add_pd(d[0], _mm512_cvtps_pd(_mm512_castps512_ps256(*acc)));
    d[1] = _mm512_add_pd(d[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(*acc, 1)));
    *acc = _mm512_setzero_ps();
}

INLINE void lanes_store(const __m512d *d, float *y) {
    _mm256_storeu_ps(y, _mm512_cvtpd_ps(d[0]));
    _mm256_storeu_ps(y + 8, _mm512_cvtpd_ps(d[1]));
}

/* 2^(e - 127) for 16 e8m0 bytes (or one, broadcast): the byte in a float's exponent. */
INLINE __m512 e8m0_scales(const uint8_t *s) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)s)), 23)); }
INLINE __m512 e8m0_scale(uint8_t s) { return _mm512_castsi512_ps(_mm512_set1_epi32((int)s << 23)); }

/* R panels x NT tokens (xs + t * cols, or for FP8 a float input xf + t *
 * ldx: wo_a's, not quantized, the group sums then float FMA chains) into
 * y[k] + t * ldy. FP8: w[k] the panel's 16 * cols bytes, s[k] its row
 * block's scales (one per 128 columns); FP4: w[k] 8 * cols bytes of
 * codes, s[k] the scales [cols / 32][16]. The running sums wait in memory (touched once a scale group),
 * the registers hold the group sums. */
INLINE void dot_panels_kernel(weight_kind kind, const uint8_t *const *w, const uint8_t *const *s, int R, int NT, int cols, const uint16_t *xs,
                              const float *xf, int ldx, float *const *y, int ldy) {
    int fp8 = kind == WK_FP8, group = fp8 ? 128 : 32;
    fp8_tables T8 = fp8_tables_load();
    __m512i T4 = fp4_panel_table();
    __m512 TF = _mm512_loadu_ps(fast_fp4_f32);
    __m512 part[16]; /* the group sums. Two chains a group (FP4's low and high nibbles) hid the dot products'
                         * latency at 1-2 tokens but left registers for 2 panels only at 3-4 tokens: from memory,
                         * alternating, one chain and 4 panels gave 3-4 tokens +5-18%, 6 tokens +24%, 1 token the same */
    float acc[16][16];
    __m512d ds[32];
    _Pragma("GCC unroll 16") for (int a = 0; a < R * NT; a++) ds[2 * a] = ds[2 * a + 1] = _mm512_setzero_pd();
    for (int k0 = 0; k0 < cols; k0 += PANEL_FLUSH) {
        int k1 = cols - k0 < PANEL_FLUSH ? cols : k0 + PANEL_FLUSH;
        _Pragma("GCC unroll 16") for (int a = 0; a < R * NT; a++) _mm512_storeu_ps(acc[a], _mm512_setzero_ps());
        for (int g = k0; g < k1; g += group) {
            _Pragma("GCC unroll 16") for (int a = 0; a < R * NT; a++) part[a] = _mm512_setzero_ps();
            if (fp8 && xf) { /* a float input: each decoded bf16 pair as two float vectors (column c in the low words) */
                for (int c = g; c < g + 128; c += 4)
                    _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) {
                        __m512i w0, w1;
                        if (NT == 1) prefetch_ahead(w[k] + (size_t)16 * c);
                        fp8_decode(&T8, w[k] + (size_t)16 * c, &w0, &w1);
                        __m512 f[4];
                        bf16_pairs_f32(w0, &f[0], &f[1]), bf16_pairs_f32(w1, &f[2], &f[3]);
                        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                            const float *xt = xf + (size_t)t * ldx + c;
                            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) part[k * NT + t] = fma_bcast(part[k * NT + t], f[q], xt + q);
                        }
                    }
            } else if (fp8) {
                for (int c = g; c < g + 128; c += 4)
                    _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) {
                        __m512i w0, w1;
                        if (NT == 1) prefetch_ahead(w[k] + (size_t)16 * c);
                        fp8_decode(&T8, w[k] + (size_t)16 * c, &w0, &w1);
                        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                            const uint16_t *xt = xs + (size_t)t * cols + c;
                            part[k * NT + t] = dp_pair(dp_pair(part[k * NT + t], w0, xt), w1, xt + 2);
                        }
                    }
            } else if (xf) { /* FP4, one token, x floats of bf16 values (fp4_fma) */
                _Pragma("GCC unroll 4") for (int c = g; c < g + 32; c += 8)
                    _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) {
                        prefetch_ahead(w[k] + (size_t)8 * c);
                        __m512i d = load_once(w[k] + (size_t)8 * c);
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                            __m512 even = _mm512_permutexvar_ps(q ? _mm512_srli_epi32(d, 4 * q) : d, TF);
                            __m512 odd = _mm512_permutexvar_ps(_mm512_srli_epi32(d, 4 * (4 + q)), TF);
                            part[k] = fma_bcast(fma_bcast(part[k], odd, xf + c + 2 * q + 1), even, xf + c + 2 * q);
                        }
                    }
            } else {
                _Pragma("GCC unroll 4") for (int c = g; c < g + 32; c += 8)
                    _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) {
                        __m512i q4[4];
                        if (NT == 1) prefetch_ahead(w[k] + (size_t)8 * c);
                        fp4_panel_decode(T4, w[k] + (size_t)8 * c, q4);
                        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                            const uint16_t *xt = xs + (size_t)t * cols + c;
                            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                                part[k * NT + t] = dp_pair(part[k * NT + t], q4[q], xt + 2 * q);
                        }
                    }
            }
            _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) {
                __m512 scale = fp8 ? e8m0_scale(s[k][g / 128]) : e8m0_scales(s[k] + g / 2);
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                    float *a = acc[k * NT + t];
                    __m512 sum = part[k * NT + t];
                    _mm512_storeu_ps(a, _mm512_fmadd_ps(sum, scale, _mm512_loadu_ps(a)));
                }
            }
        }
        _Pragma("GCC unroll 16") for (int a = 0; a < R * NT; a++) {
            __m512 v = _mm512_loadu_ps(acc[a]);
            lanes_flush(&v, &ds[2 * a]);
        }
    }
    _Pragma("GCC unroll 4") for (int k = 0; k < R; k++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
        lanes_store(&ds[2 * (k * NT + t)], y[k] + (size_t)t * ldy);
}

/* Panels side by side for NT tokens: as many as the group sums' registers
 * allow (R * NT <= 16), and 4 streams a thread when they do (PANEL_SHAPES). */
static int panels_for(int nt) { return nt <= 4 ? 4 : 2; }

/* K(R, NT) for rr panels (1, or panels_for's) and nt tokens, constants. */
#define PANEL_SHAPES(K, rr, nt)                                                                                                           \
    do {                                                                                                                                  \
        switch ((nt) * 2 + ((rr) > 1)) {                                                                                                  \
        case 2: K(1, 1); break;                                                                                                           \
        case 3: K(4, 1); break;                                                                                                           \
        case 4: K(1, 2); break;                                                                                                           \
        case 5: K(4, 2); break;                                                                                                           \
        case 6: K(1, 3); break;                                                                                                           \
        case 7: K(4, 3); break;                                                                                                           \
        case 8: K(1, 4); break;                                                                                                           \
        case 9: K(4, 4); break;                                                                                                           \
        case 10: K(1, 5); break;                                                                                                          \
        case 11: K(2, 5); break;                                                                                                          \
        case 12: K(1, 6); break;                                                                                                          \
        case 13: K(2, 6); break;                                                                                                          \
        case 14: K(1, 7); break;                                                                                                          \
        case 15: K(2, 7); break;                                                                                                          \
        case 16: K(1, 8); break;                                                                                                          \
        default: K(2, 8); break;                                                                                                          \
        }                                                                                                                                 \
    } while (0)

/* The kernel for W's kind and input. */
#define PANELS(RR, NT)                                                                                                                    \
    do {                                                                                                                                  \
        if (!fp8 && NT == 1 && fast_fp4_fma) dot_panels_kernel(WK_FP4, w, s, RR, 1, cols, NULL, xf, ldx, yk, ldy);                        \
        else if (!fp8) dot_panels_kernel(WK_FP4, w, s, RR, NT, cols, xs, NULL, 0, yk, ldy);                                               \
        else if (xs) dot_panels_kernel(WK_FP8, w, s, RR, NT, cols, xs, NULL, 0, yk, ldy);                                                 \
        else dot_panels_kernel(WK_FP8, w, s, RR, NT, cols, NULL, xf, ldx, yk, ldy);                                                       \
    } while (0)

/* nt tokens through panels p + j * step (j < rr: rr is panels_for's or 1)
 * of W: xs in bf16 or (FP8, xs NULL) xf floats, ldx apart; row r's outputs
 * at y + r - r0. */
DOT static void panels_pass(const v4c_matrix *W, int p, int step, int rr, int nt, const uint16_t *xs, const float *xf, int ldx, float *y, int r0,
                            int ldy) {
    int cols = W->cols, fp8 = W->kind == WK_FP8;
    size_t bytes = fp8 ? (size_t)16 * cols : (size_t)8 * cols;
    const uint8_t *w[4], *s[4];
    float *yk[4];
    for (int k = 0; k < rr; k++) {
        int q = p + k * step;
        w[k] = (const uint8_t *)W->data + (size_t)q * bytes;
        s[k] = (const uint8_t *)W->scale + (fp8 ? (size_t)(q * PANEL_ROWS / 128) * (cols / 128) : (size_t)q * (cols / 2));
        yk[k] = y + (size_t)q * PANEL_ROWS - r0;
    }
    PANEL_SHAPES(PANELS, rr, nt);
}

/* Whether the scales of rows [a, b) (whole panels) stay in range. */
DOT static int panels_ok(const v4c_matrix *W, int a, int b) {
    if (W->kind == WK_FP4) return fp4_row_ok((const uint8_t *)W->scale + (size_t)a * (W->cols / 32), (b - a) * (W->cols / 32));
    for (int r = a / 128 * 128; r < b; r += 128)
        if (!fp8_block_ok(W, r)) return 0;
    return 1;
}

/* Rows [r0, r1) (whole panels) of a packed FP8/FP4 matrix for in->n
 * tokens, any number, in tiles of up to TOKEN_TILE: with in->xb (a quantized
 * input), or for FP8 a float input at in->x (wo_a's). The panels run side by side
 * from R consecutive sub-spans, each read as one long stream (as the
 * head's panels, gemv_avx512_panels.c: adjacent short panels start a
 * stream each and read slower from memory). Panels whose scales could
 * leave the normal range go exact. scratch: a decoded row. */
DOT void dot_panels(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch) {
    int cols = W->cols, n = in->n, p0 = (r0 + PANEL_ROWS - 1) / PANEL_ROWS, p1 = r1 / PANEL_ROWS;
    if (p0 >= p1 || r0 % PANEL_ROWS || r1 % PANEL_ROWS) { /* rows off the panel bounds (no caller's): exact */
        int a = p0 < p1 ? p0 * PANEL_ROWS : r1, b = p0 < p1 ? p1 * PANEL_ROWS : r1;
        for (int r = r0; r < r1; r++)
            if (r < a || r >= b) exact_row(W, r, in->x, in->ldx, n, y + (r - r0), ldy, scratch);
        if (a < b) dot_panels(W, a, b, in, y + (a - r0), ldy, scratch);
        return;
    }
    int all_ok = (W->scales_ok || panels_ok(W, r0, r1)) && (in->xb || W->kind == WK_FP8); /* FP4 takes quantized inputs only */
    int tiles = (n + TOKEN_TILE - 1) / TOKEN_TILE; /* of even sizes: 9 tokens as 5 + 4, not 8 + 1 (each tile decodes the weights) */
    for (int i = 0, t0 = 0; i < tiles; i++) {
        int nt = n / tiles + (i < n % tiles), R = panels_for(nt), per = (p1 - p0) / R, p = p0;
        const uint16_t *xt = in->xb ? in->xb + (size_t)t0 * cols : NULL;
        const float *xf = in->x + (size_t)t0 * in->ldx;
        float *yt = y + (size_t)t0 * ldy;
        if (all_ok) {
            for (int j = 0; j < per; j++) panels_pass(W, p0 + j, per, R, nt, xt, xf, in->ldx, yt, r0, ldy);
            p = p0 + R * per;
        }
        for (; p < p1; p++) {
            int a = p * PANEL_ROWS;
            if (all_ok || ((in->xb || W->kind == WK_FP8) && panels_ok(W, a, a + PANEL_ROWS))) panels_pass(W, p, 1, 1, nt, xt, xf, in->ldx, yt, r0, ldy);
            else
                for (int r = a; r < a + PANEL_ROWS; r++) exact_row(W, r, xf, in->ldx, nt, yt + (r - r0), ldy, scratch);
        }
        t0 += nt;
    }
}

/* The codes of panel p of an FP8/FP4 matrix, rearranged where they lie
 * (matrix_pack_in_place's layout): each line gathers one 32-bit unit of
 * each of the 16 rows (4 FP8 columns, 8 FP4 ones) from a copy of the
 * panel; a byte shuffle puts each FP8 row's two column pairs at its lane,
 * FP4's even columns' nibbles go to the low word and the odd ones' to the
 * high word (fp4_unzip). tmp: the panel's bytes. About 10x the scalar
 * packer. */
DOT void dot_pack_panel(uint8_t *panel, size_t row_bytes, int fp4, uint8_t *tmp) {
    memcpy(tmp, panel, PANEL_ROWS * row_bytes);
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)row_bytes));
    const __m512i place = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
    const __m512i m1 = _mm512_set1_epi32(0x00F000F0), m2 = _mm512_set1_epi32(0x0000FF00);
    for (size_t u = 0; u < row_bytes / 4; u++) {
        __m512i d = _mm512_i32gather_epi32(rows, tmp + 4 * u, 1); /* lane i: row i's bytes q0..q3 */
        if (fp4) { /* fp4_unzip's two swaps, in every lane */
            __m512i t = _mm512_and_si512(_mm512_xor_si512(d, _mm512_srli_epi32(d, 4)), m1);
            d = _mm512_xor_si512(d, _mm512_xor_si512(t, _mm512_slli_epi32(t, 4)));
            t = _mm512_and_si512(_mm512_xor_si512(d, _mm512_srli_epi32(d, 8)), m2);
            d = _mm512_xor_si512(d, _mm512_xor_si512(t, _mm512_slli_epi32(t, 8)));
            _mm512_storeu_si512(panel + 64 * u, d);
        } else {
            _mm512_storeu_si512(panel + 64 * u, _mm512_shuffle_epi8(d, place));
        }
    }
}
