/* Panel-packed F32/BF16 matrices (matrix.h: 16 rows in the lanes of a
 * vector, column by column) against float inputs: the model's head.
 *
 * Each output (row r, token t) is ONE float32 FMA chain in column order,
 *     acc = fma(W[r][c], x_t[c], acc),  c = 0, 1, 2, ...
 * added to a double sum every 512 columns (a flush period; a row of at
 * most 512 columns ends in float) and rounded to float at the end. A chain
 * depends on its own row and token only, so one token and any batch give
 * the same bits (test_kernels checks them against a portable C rendering
 * of this definition, fmaf and all).
 *
 * Why: with the rows in lanes, a step loads R weight vectors and
 * broadcasts each token's input once, R x NT FMAs from R loads plus NT
 * broadcasts; the row-major kernels load a token's x vector per row and
 * per token (float_kblock), and their column blocks jump between rows.
 * Here every panel is one sequential stream. Measured on Zen 5, the
 * 129,280 x 4096 BF16 head from memory on both cores (docs/performance.md):
 * 8 tokens 40-45 -> 25-26 ms, 4 tokens 27-28 -> 16-20, 1 token about the
 * same (14-18 ms). */
#include "kernels/avx512_fast.h"

enum {
    PERIOD = 256, /* column pairs per flush period: 512 columns */
    GROUP = 8,    /* tokens per pass: x packed column by column, [c][t] */
};

/* The pair of weight vectors of column pair j (columns 2j and 2j+1, 16 rows
 * each) of the panel at p: BF16 holds both in one vector (the even column
 * in the low 16 bits of a lane), F32 in two. */
INLINE void pair_load(int bf16, const char *p, int j, __m512 *even, __m512 *odd) {
    if (bf16) {
        bf16_pairs_f32(load_once(p + (size_t)j * 64), even, odd);
    } else {
        *even = load_once_ps((const float *)(p + (size_t)j * 128));
        *odd = load_once_ps((const float *)(p + (size_t)j * 128 + 64));
    }
}

/* A panel's 16 outputs for one token: row i of the panel into y[off + i],
 * for i in [a, b) only (off < 0 for a panel cut by the span's first row). */
INLINE void panel_store(__m512 v, float *y, int off, int a, int b) {
    if (a == 0 && b == PANEL_ROWS) {
        _mm512_storeu_ps(y + off, v);
        return;
    }
    float out[PANEL_ROWS];
    _mm512_storeu_ps(out, v);
    for (int i = a; i < b; i++) y[off + i] = out[i];
}

/* R panels (their first rows pan[0..R), anywhere in W) x NT tokens of
 * packed x (xp[c * NT + t]); outputs for rows [r0, r1) only, y at row r0. */
INLINE void panels_tile(const v4c_matrix *W, const int *pan, int R, int NT, const float *xp, int r0, int r1, float *y, int ldy) {
    int bf16 = W->kind == WK_BF16, cols = W->cols, pairs = cols / 2;
    const char *base[4];
    _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) base[p] = (const char *)W->data + (size_t)pan[p] * cols * (bf16 ? 2 : 4);
    __m512 acc[4][GROUP];
    __m512d lo[4][GROUP], hi[4][GROUP];
    int single = pairs <= PERIOD;
    _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        acc[p][t] = _mm512_setzero_ps();
        lo[p][t] = hi[p][t] = _mm512_setzero_pd();
    }
    for (int j0 = 0; j0 < pairs; j0 += PERIOD) {
        int j1 = j0 + PERIOD < pairs ? j0 + PERIOD : pairs;
        for (int j = j0; j < j1; j++) {
            __m512 even[4], odd[4];
            if (NT == 1 && bf16) _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) prefetch_ahead(base[p] + (size_t)j * 64);
            _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) pair_load(bf16, base[p], j, &even[p], &odd[p]);
            const float *xe = xp + (size_t)2 * j * NT, *xo = xe + NT;
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                __m512 xv = _mm512_set1_ps(xe[t]);
                _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) acc[p][t] = _mm512_fmadd_ps(even[p], xv, acc[p][t]);
            }
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                __m512 xv = _mm512_set1_ps(xo[t]);
                _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) acc[p][t] = _mm512_fmadd_ps(odd[p], xv, acc[p][t]);
            }
        }
        if (single) break; /* one period: (float)(0.0 + (double)acc) is acc */
        _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            lo[p][t] = _mm512_add_pd(lo[p][t], _mm512_cvtps_pd(_mm512_castps512_ps256(acc[p][t])));
            hi[p][t] = _mm512_add_pd(hi[p][t], _mm512_cvtps_pd(_mm512_extractf32x8_ps(acc[p][t], 1)));
            acc[p][t] = _mm512_setzero_ps();
        }
    }
    _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) {
        int a = r0 > pan[p] ? r0 - pan[p] : 0, b = r1 - pan[p] < PANEL_ROWS ? r1 - pan[p] : PANEL_ROWS;
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            __m512 v = single ? acc[p][t]
                              : _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo[p][t])), _mm512_cvtpd_ps(hi[p][t]), 1);
            panel_store(v, y + (size_t)t * ldy, pan[p] - r0, a, b);
        }
    }
}

/* The panels covering rows [r0, r1) for NT tokens, as R sequential
 * sub-spans read side by side, a panel of each per tile (4 up to 6 tokens,
 * 3 for 7-8: R x NT accumulators and R weight vectors fit the 32
 * registers); then the panels left, one at a time. Long streams are what
 * the hardware prefetcher follows: R adjacent panels per tile were as fast
 * on 4096 columns but 35% slower on 128 (a 4 KB panel per stream, each
 * restarted; software prefetch did not recover it). */
INLINE void panel_span(const v4c_matrix *W, int r0, int r1, int NT, const float *xp, float *y, int ldy) {
    int R = NT <= 6 ? 4 : 3, first = r0 / PANEL_ROWS, count = (r1 + PANEL_ROWS - 1) / PANEL_ROWS - first, per = count / R;
    for (int i = 0; i < per; i++) {
        int pan[4];
        _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) pan[p] = (first + p * per + i) * PANEL_ROWS;
        panels_tile(W, pan, R, NT, xp, r0, r1, y, ldy);
    }
    for (int i = R * per; i < count; i++) {
        int pan[1] = {(first + i) * PANEL_ROWS};
        panels_tile(W, pan, 1, NT, xp, r0, r1, y, ldy);
    }
}

/* n tokens of x ([n][ldx]) through rows [r0, r1) of the packed W, GROUP
 * tokens at a time, each group's x packed into scratch (GROUP * cols
 * floats). */
DOT void panel_product(const v4c_matrix *W, int r0, int r1, const float *x, int ldx, int n, float *y, int ldy, void *scratch) {
    float *xp = scratch;
    int cols = W->cols;
    for (int t0 = 0; t0 < n; t0 += GROUP) {
        int nt = n - t0 < GROUP ? n - t0 : GROUP;
        for (int c = 0; c < cols; c++)
            for (int t = 0; t < nt; t++) xp[(size_t)c * nt + t] = x[(size_t)(t0 + t) * ldx + c];
        float *yt = y + (size_t)t0 * ldy;
#define SPAN(NT) panel_span(W, r0, r1, NT, xp, yt, ldy)
        switch (nt) {
        case 1: SPAN(1); break;
        case 2: SPAN(2); break;
        case 3: SPAN(3); break;
        case 4: SPAN(4); break;
        case 5: SPAN(5); break;
        case 6: SPAN(6); break;
        case 7: SPAN(7); break;
        default: SPAN(8); break;
        }
#undef SPAN
    }
}
