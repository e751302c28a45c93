/* The default AVX-512 kernels for float inputs: F32 and BF16 weights, and
 * FP8 weights whose input is not quantized (wo_a, MODEL.md §4). Products
 * and sums in float32 FMA chains, flushed to double like the dot path's
 * (avx512_fast.h) or, on F32/BF16 rows of one flush period, summed in
 * float (short_chain); one chain per output for one token, a few, or a
 * panel. */
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/avx512_fast.h"

/* ---- float inputs: float32 FMA chains, flushed like the above ----------- */
/* F32 and BF16 weights, decoded to floats in column order. Output (r, t) is the chain
 * acc = fma(W_r[16 columns], x_t[same], acc), flushed every 32 steps, for a
 * token alone (rows decoded on the fly) or a batch (rows decoded into a
 * float panel first). */

/* Rows per float panel: at most 256 KB, so the panel stays in L2 while
 * every token group reads it (mHC's 16K-column mixes get 4 rows). */
static inline int panel_rows(int cols) {
    int rows = 65536 / cols / MR * MR;
    return rows < MR ? MR : rows > F_PANEL ? F_PANEL : rows;
}

/* 16 weights of row r from column k. */
INLINE __m512 decode16(const v4c_matrix *W, int r, int k) {
    size_t at = (size_t)r * W->cols + k;
    if (W->kind == WK_F32) return load_once_ps((const float *)W->data + at);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)W->data + at));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Rows of one flush period (at most 16 * F_STEPS columns: the tiny
 * models' 128-column head and layers) end their chains in float: the 16
 * lanes of an output summed in _mm512_reduce_add_ps's order (l + l+8,
 * then + 4, + 2, + 1) rather than flushed to double and reduced there,
 * which cost as much as such a row's 8 FMAs. Every path below takes the
 * same order for them (float_rows, micro_f32 via panel_tiles_f32,
 * float_short), so a token's outputs do not depend on its batch. */
static inline int short_chain(int cols) { return cols <= 16 * F_STEPS; }

/* The 16 sums of a[0..16), each in _mm512_reduce_add_ps's order, a[4i + j]
 * landing in lane 4j + i: with a[4 * row + token], quarter j holds token
 * j's 4 rows. 45 shuffles and adds for 16 outputs. */
INLINE __m512 reduce16(const __m512 *a) {
    __m512 l1[8], l2[4], l3[2];
    _Pragma("GCC unroll 8") for (int q = 0; q < 8; q++) /* l + l+8: outputs 2q and 2q+1 side by side */
        l1[q] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], 0x44), _mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], 0xEE));
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) /* + 4: quarter j is output 4r + j */
        l2[r] = _mm512_add_ps(_mm512_shuffle_f32x4(l1[2 * r], l1[2 * r + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(l1[2 * r], l1[2 * r + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    _Pragma("GCC unroll 2") for (int u = 0; u < 2; u++) { /* + 2 */
        __m512d p = _mm512_castps_pd(l2[2 * u]), q = _mm512_castps_pd(l2[2 * u + 1]);
        l3[u] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(p, q)), _mm512_castpd_ps(_mm512_unpackhi_pd(p, q)));
    }
    return _mm512_add_ps(_mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(3, 1, 3, 1))); /* + 1 */
}

/* NR rows x NT tokens (NR * NT <= VA) decoded on the fly; row i is
 * r + i * rs (as gemv_rows). */
INLINE void float_rows(const v4c_matrix *W, int r, int rs, int NR, int NT, const float *x, int ldx, float *y, int ldy) {
    int steps = W->cols / 16;
    __m512 acc[VA];
    __m512d ds[VA];
    _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) acc[a] = _mm512_setzero_ps(), ds[a] = _mm512_setzero_pd();
    size_t row_bytes = (size_t)W->cols * (W->kind == WK_F32 ? 4 : 2);
    int pf = rs == 1 && fast_prefetch;
    for (int s0 = 0; s0 < steps; s0 += F_STEPS) { /* flush periods: no test per step (short rows pay for it) */
        int s1 = s0 + F_STEPS < steps ? s0 + F_STEPS : steps;
        for (int s = s0; s < s1; s++) {
            if (pf) prefetch_next((const char *)W->data + (size_t)r * row_bytes, (size_t)NR * row_bytes, s, steps);
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                __m512 w = decode16(W, r + i * rs, 16 * s);
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                    acc[i * NT + t] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + (size_t)t * ldx + 16 * s), acc[i * NT + t]);
            }
        }
        if (short_chain(W->cols)) {
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                y[(size_t)t * ldy + (size_t)i * rs] = _mm512_reduce_add_ps(acc[i * NT + t]);
            return;
        }
        _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
    }
    store_pass(ds, NR, NT, rs, y, ldy);
}

/* MR panel rows (stride `stride`) x NT tokens of float x (stride ldx) over
 * kcols columns; ds[i * MT + t] carries the double sums across column
 * blocks (K_BLOCK, as the dot path's panels: zeroed when `first`,
 * finished into y when `last`). */
INLINE void micro_f32(const float *P, int stride, const float *X, int ldx, int NT, int kcols, __m512d *ds, int first, int last, float *y,
                      int ldy, int nr, int in_float) {
    int steps = kcols / 16;
    __m512 acc[MR][MT];
    _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
        acc[i][t] = _mm512_setzero_ps();
        if (first) ds[i * MT + t] = _mm512_setzero_pd();
    }
    for (int s = 0; s < steps; s++) {
        __m512 w[MR];
        _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) w[i] = _mm512_loadu_ps(P + (size_t)i * stride + 16 * s);
        _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++) {
            __m512 xv = _mm512_loadu_ps(X + (size_t)t * ldx + 16 * s);
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) acc[i][t] = _mm512_fmadd_ps(w[i], xv, acc[i][t]);
        }
        if (in_float) continue;
        if (s % F_STEPS == F_STEPS - 1 || s == steps - 1)
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++)
                flush(&acc[i][t], &ds[i * MT + t]);
    }
    if (in_float) { /* short_chain rows: one block, ended in float */
        _Pragma("GCC unroll 4") for (int i = 0; i < MR; i++) if (i < nr) _Pragma("GCC unroll 6") for (int t = 0; t < NT; t++)
            y[(size_t)t * ldy + i] = _mm512_reduce_add_ps(acc[i][t]);
        return;
    }
    if (last) store_sums(ds, MR, NT, MT, nr, y, ldy);
}

/* A decoded float panel of nr rows against n tokens of x, in micro-tiles,
 * column block by column block. */
/* in_float: F32/BF16 short_chain rows (FP8 panels keep the double flush of
 * their few-token path, fp8f_rows). */
DOT static void panel_tiles_f32(const float *panel, int nr, int cols, const float *x, int ldx, int n, float *y, int ldy, int in_float) {
    __m512d dsum[(F_PANEL + MR) * MT];
    for (panel_tile p = {0}; panel_next(&p, n, nr, cols);) {
        const float *Pi = panel + (size_t)p.i * cols + p.k0, *Xk = x + (size_t)p.t0 * ldx + p.k0;
        float *yt = y + (size_t)p.t0 * ldy + p.i;
        __m512d *ds = dsum + (size_t)p.i * MT;
#define MICRO_F32(NT) micro_f32(Pi, cols, Xk, ldx, NT, p.kcols, ds, p.first, p.last, yt, ldy, p.rows, in_float)
        TILE_TOKENS(p.nt, MICRO_F32);
#undef MICRO_F32
    }
}

DOT static void float_span(const v4c_matrix *W, int r0, int r1, const float *x, int ldx, int n, float *y, int ldy, float *panel) {
    int cols = W->cols;
    if (n <= few_tokens(cols)) { /* a few tokens: rows decoded on the fly */
        for (int r = r0; r < r1;) {
            int nr = r1 - r >= rows_for(n) ? rows_for(n) : 1;
#define FLOAT_ROWS(NR, NT, ...) float_rows(W, r, 1, NR, NT, x, ldx, y + (r - r0), ldy)
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
        panel_tiles_f32(panel, nr, cols, x, ldx, n, y + (p0 - r0), ldy, short_chain(cols));
    }
}

DOT void fast_rows_float(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy,
                         double *scratch) {
    fast_tables_init();
    if (W->panels) {
        panel_product(W, r0, r1, x, ldx, n, y, ldy, scratch);
    } else if (W->cols % 16) { /* the exact kernel, with the double inputs matmul leaves to this backend */
        double *own = xd ? NULL : matmul_prepare_input(W->kind, x, ldx, n, W->cols);
        backend_avx512.rows[W->kind](W, r0, r1, x, xd ? xd : own, ldx, n, y, ldy, scratch);
        free(own);
    } else {
        float_span(W, r0, r1, x, ldx, n, y, ldy, (float *)scratch);
    }
}

/* 3..8 tokens (NT) over rows of more than 1024 columns: the x of 8 tokens
 * (128 KB at 4096 columns) no longer fits in L1, so column-blocked streams
 * (avx512_fast.h), x packed step by step (the NT vectors of a step side by
 * side): rows of x 16 KB apart fall in the same L1 sets. Each output's
 * chain is float_rows': a float chain per flush period, added to its double
 * sum in column order. */
INLINE void float_kblock(const v4c_matrix *W, int r0, int r1, const float *x0, int ldx, int NT, float *y, int ldy, __m512d *ds, float *x) {
    int steps = W->cols / 16;
    for (int s = 0; s < steps; s++)
        for (int t = 0; t < NT; t++) _mm512_storeu_ps(x + ((size_t)s * NT + t) * 16, _mm512_loadu_ps(x0 + (size_t)t * ldx + 16 * s));
    size_t row_bytes = (size_t)W->cols * (W->kind == WK_F32 ? 4 : 2);
    for (int rb = r0; rb < r1; rb += KB_ROWS) {
        int nr = r1 - rb < KB_ROWS ? r1 - rb : KB_ROWS;
        block_prefetch pf = block_prefetch_start(W->data, row_bytes, rb + nr, block_after(rb, nr, r1), (size_t)nr * steps);
        for (int s0 = 0; s0 < steps; s0 += F_STEPS) {
            int s1 = s0 + F_STEPS < steps ? s0 + F_STEPS : steps;
            for (int i = 0; i < nr; i++) {
                __m512 acc[8];
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
                for (int s = s0; s < s1; s++) {
                    block_prefetch_tick(&pf);
                    __m512 w = decode16(W, rb + i, 16 * s);
                    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                        acc[t] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + ((size_t)s * NT + t) * 16), acc[t]);
                }
                block_flush(acc, ds + (size_t)i * 8, NT, s0 == 0);
            }
        }
        block_store(ds, nr, NT, y + (rb - r0), ldy);
    }
}

/* 4 rows x NT (<= 4) tokens of short_chain rows, reduced together
 * (reduce16): token t's 4 sums are one 128-bit store. */
INLINE void short_tile(const v4c_matrix *W, int r, const float *x, int ldx, int NT, float *y, int ldy) {
    int steps = W->cols / 16;
    __m512 acc[16];
    _Pragma("GCC unroll 16") for (int a = 0; a < 16; a++) acc[a] = _mm512_setzero_ps();
    for (int s = 0; s < steps; s++) {
        __m512 w[4];
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) w[i] = decode16(W, r + i, 16 * s);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)t * ldx + 16 * s);
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) acc[4 * i + t] = _mm512_fmadd_ps(w[i], xv, acc[4 * i + t]);
        }
    }
    __m512 v = reduce16(acc); /* extract takes an immediate: no loop (unoptimised builds keep loops) */
    _mm_storeu_ps(y, _mm512_castps512_ps128(v));
    if (NT > 1) _mm_storeu_ps(y + ldy, _mm512_extractf32x4_ps(v, 1));
    if (NT > 2) _mm_storeu_ps(y + (size_t)2 * ldy, _mm512_extractf32x4_ps(v, 2));
    if (NT > 3) _mm_storeu_ps(y + (size_t)3 * ldy, _mm512_extractf32x4_ps(v, 3));
}

/* 3..8 tokens over short_chain rows, 4 rows at a time (their weights stay
 * in L1 while each group of 4 tokens passes), one sequential stream per
 * thread. Measured on Zen 5, the 129,280 x 128 BF16 head on both cores at
 * 8 tokens from memory: 1.92-1.99 ms with the double flushes one row at a
 * time, 1.27-1.28 ms so (one core in L2, 4096 rows: 74 -> 55 us).
 * Slower, from memory: 4 streams per thread (2.2-2.9 ms: 32 write streams
 * of y), and 16 rows per 64-byte store per token (1.5-1.8 ms). Returns
 * where the rows it left (fewer than 4) begin. */
DOT static int float_short(const v4c_matrix *W, int r0, int r1, const float *x, int ldx, int n, float *y, int ldy) {
    int r = r0;
    for (; r + 4 <= r1; r += 4)
        for (int t0 = 0; t0 < n; t0 += 4) {
            const float *xt = x + (size_t)t0 * ldx;
            float *yt = y + (size_t)t0 * ldy + (r - r0);
            switch (n - t0 < 4 ? n - t0 : 4) {
            case 1: short_tile(W, r, xt, ldx, 1, yt, ldy); break;
            case 2: short_tile(W, r, xt, ldx, 2, yt, ldy); break;
            case 3: short_tile(W, r, xt, ldx, 3, yt, ldy); break;
            default: short_tile(W, r, xt, ldx, 4, yt, ldy); break;
            }
        }
    return r;
}

/* n <= 8 tokens of F32/BF16 rows [r0, r1), the same chains as a batch's:
 * from 3 tokens column-blocked on rows beyond 1024 columns (float_kblock)
 * and in 4 x 4 tiles on short_chain rows (float_short); otherwise as S
 * sequential sub-spans, one row of each per pass (dot_stream's reasoning),
 * S * n <= 8 accumulators (more were measured slower: the x vectors of all
 * tokens are held too). */
DOT void float_stream(const v4c_matrix *W, int r0, int r1, const float *x, int ldx, int n, float *y, int ldy, void *scratch) {
    if (W->panels) {
        panel_product(W, r0, r1, x, ldx, n, y, ldy, scratch);
        return;
    }
    if (n > 2 && W->cols > 1024 && W->cols % 16 == 0) {
        __m512d *ds = scratch;                  /* KB_ROWS x 8 double sums: 8 KB */
        float *xp = (float *)(ds + KB_ROWS * 8); /* x packed: n x cols floats */
#define FLOAT_KBLOCK(NT) float_kblock(W, r0, r1, x, ldx, NT, y, ldy, ds, xp)
        KBLOCK_TOKENS(n, FLOAT_KBLOCK);
#undef FLOAT_KBLOCK
        return;
    }
    if (n > 2 && short_chain(W->cols) && W->cols % 16 == 0) {
        int rest = float_short(W, r0, r1, x, ldx, n, y, ldy);
        if (rest < r1) fast_rows_float(W, rest, r1, x, NULL, ldx, n, y + (rest - r0), ldy, scratch);
        return;
    }
    int S = n <= 2 ? STREAMS : n <= 4 ? 2 : 1, per = (r1 - r0) / S, tail = W->cols % 16 ? r0 : r0 + S * per;
    for (int j = 0; r0 < tail && j < per; j++) {
#define STREAM_ROWS(NR, NT) float_rows(W, r0 + j, per, NR, NT, x, ldx, y + j, ldy)
        switch (n) {
        case 1: STREAM_ROWS(STREAMS, 1); break;
        case 2: STREAM_ROWS(STREAMS, 2); break;
        case 3: STREAM_ROWS(2, 3); break;
        case 4: STREAM_ROWS(2, 4); break;
        case 5: STREAM_ROWS(1, 5); break;
        case 6: STREAM_ROWS(1, 6); break;
        case 7: STREAM_ROWS(1, 7); break;
        default: STREAM_ROWS(1, 8); break;
        }
#undef STREAM_ROWS
    }
    if (tail < r1) fast_rows_float(W, tail, r1, x, NULL, ldx, n, y + (tail - r0), ldy, scratch);
}

/* ---- FP8 weights with float inputs (wo_a) -------------------------------- */
/* The bf16 byte tables again, widened to floats in lane order: float
 * vector q of a 64-column step holds columns 16L + 4q + i (L = element / 4,
 * i = element % 4); x is laid out the same way by float_prepare. The block
 * scale multiplies the decoded weights of the panel, and x for one token
 * when that is exact: the products, hence the chains, are the same. */

int float_prepare(const float *x, int ldx, int n, int cols, float *xf) {
    fast_tables_init();
    int ok = 1; /* every x times a scale within 2^+-EXP_LIMIT stays a normal float */
    for (int t = 0; t < n; t++)
        for (int g = 0; g < cols; g += 64)
            for (int q = 0; q < 4; q++)
                for (int e = 0; e < 16; e++) {
                    float v = x[(size_t)t * ldx + g + 16 * (e / 4) + 4 * q + e % 4];
                    uint32_t u;
                    memcpy(&u, &v, 4);
                    int ex = (int)((u >> 23) & 0xFF) - 127; /* zero: -127; subnormal too (rejected with it); inf/NaN: 128 */
                    if ((u & 0x7FFFFFFF) && (ex < -80 || ex > 80)) ok = 0;
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
INLINE void fp8f_rows(const v4c_matrix *W, int r, int rs, int NR, int NT, const float *xs, int xs_scaled, float *y, int ldy) {
    int cols = W->cols, steps = cols / 16;
    fp8_tables T = fp8_tables_load();
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r * cols;
    __m512 acc[VA];
    __m512d ds[VA];
    _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) acc[a] = _mm512_setzero_ps(), ds[a] = _mm512_setzero_pd();
    for (int s = 0; s < steps; s += 4) {
        __m512 scale = _mm512_set1_ps(fp8_block_scale(W, r, s / 8));
        if (rs == 1) prefetch_next(w, (size_t)NR * cols, s / 4, steps / 4);
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            __m512 f[4];
            fp8_decode_f32(&T, w + (size_t)i * rs * cols + 16 * s, f);
            if (rs != 1 && i) scale = _mm512_set1_ps(fp8_block_scale(W, r + i * rs, s / 8)); /* streams: rows of other blocks */
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                __m512 wq = xs_scaled ? f[q] : _mm512_mul_ps(f[q], scale);
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                    acc[i * NT + t] = _mm512_fmadd_ps(wq, _mm512_loadu_ps(xs + (size_t)t * cols + 16 * (s + q)), acc[i * NT + t]);
            }
        }
        if ((s + 4) % F_STEPS == 0 || s + 4 == steps)
            _Pragma("GCC unroll 16") for (int a = 0; a < NR * NT; a++) flush(&acc[a], &ds[a]);
    }
    store_pass(ds, NR, NT, rs, y, ldy);
}

/* n inputs ([n][cols], float_prepare's) times the scales of the 128-row
 * block holding row r, into xs: exact when float_prepare said xf_scalable. */
INLINE void scale_for_block(const v4c_matrix *W, int r, const float *xf, int n, float *xs) {
    int cols = W->cols;
    for (int k = 0; k < cols; k += 128) {
        __m512 sc = _mm512_set1_ps(fp8_block_scale(W, r, k / 128));
        for (int t = 0; t < n; t++)
            for (int q = 0; q < 128; q += 16) _mm512_storeu_ps(xs + (size_t)t * cols + k + q, _mm512_mul_ps(_mm512_loadu_ps(xf + (size_t)t * cols + k + q), sc));
    }
}

DOT void fast_fp8_float_span(const v4c_matrix *W, int r0, int r1, const float *xf, int xf_scalable, int n, float *y, int ldy, float *panel) {
    int cols = W->cols;
    if (n <= few_tokens(cols)) { /* a few tokens: rows decoded on the fly */
        const float *xs = xf;
        if (xf_scalable) scale_for_block(W, r0, xf, n, panel), xs = panel; /* this row block's scales into x, once for its rows */
        for (int r = r0; r < r1;) {
            int nr = r1 - r >= rows_for(n) ? rows_for(n) : 1;
#define FP8F_ROWS(NR, NT, ...) (xf_scalable ? fp8f_rows(W, r, 1, NR, NT, xs, 1, y + (r - r0), ldy) : fp8f_rows(W, r, 1, NR, NT, xs, 0, y + (r - r0), ldy))
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
        panel_tiles_f32(panel, nr, cols, xf, cols, n, y + (p0 - r0), ldy, 0);
    }
}

/* 3..8 tokens (NT) of FP8 rows [r0, r1) with a float input (wo_a in a
 * server's batch): float_kblock's column-blocked streams, each 128-row
 * block's scales folded into its packed x when float_prepare allowed it,
 * else into the decoded weights. The chains are fp8f_rows': FMAs chunk by
 * chunk, flushed every F_STEPS steps. The batch path decoded a float panel
 * per 16 rows first. Measured on Zen 5, 8192 x 4096 from memory on both
 * cores: 8 tokens 4.29-4.51 -> 3.03-3.18 ms, 4 tokens 2.94-2.97 ->
 * 1.91-2.02; at 2 tokens it was slower than 4 streams of rows. */
INLINE void fp8f_kblock(const v4c_matrix *W, int r0, int r1, const float *xf, int scalable, int NT, float *y, int ldy, __m512d *ds, float *xp) {
    int cols = W->cols, chunks = cols / 64, period = F_STEPS / 4;
    fp8_tables T = fp8_tables_load();
    int packed_block = -1;
    for (int rb = r0; rb < r1;) {
        int end = (rb / 128 + 1) * 128, nr = (end < r1 ? end : r1) - rb;
        if (nr > KB_ROWS) nr = KB_ROWS;
        if (packed_block != rb / 128) { /* x packed chunk by chunk: [chunk][token][64], with this block's scales if exact */
            for (int g = 0; g < chunks; g++) {
                __m512 sc = _mm512_set1_ps(scalable ? fp8_block_scale(W, rb, g / 2) : 1.0f);
                for (int t = 0; t < NT; t++)
                    for (int q = 0; q < 4; q++)
                        _mm512_storeu_ps(xp + ((size_t)g * NT + t) * 64 + 16 * q, _mm512_mul_ps(_mm512_loadu_ps(xf + (size_t)t * cols + 64 * g + 16 * q), sc));
            }
            packed_block = rb / 128;
        }
        const uint8_t *w = (const uint8_t *)W->data + (size_t)rb * cols;
        block_prefetch pf = block_prefetch_start(W->data, cols, rb + nr, block_after(rb, nr, r1), (size_t)nr * ((chunks + period - 1) / period));
        for (int g0 = 0; g0 < chunks; g0 += period) {
            int g1 = g0 + period < chunks ? g0 + period : chunks;
            for (int i = 0; i < nr; i++) {
                block_prefetch_step(&pf); /* the ticks of float_kblock were slower here (2.4-2.6 -> 2.7-3.8 ms) */
                __m512 acc[8];
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
                for (int g = g0; g < g1; g++) {
                    __m512 f[4];
                    fp8_decode_f32(&T, w + (size_t)i * cols + 64 * g, f);
                    if (!scalable) {
                        __m512 sc = _mm512_set1_ps(fp8_block_scale(W, rb, g / 2));
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) f[q] = _mm512_mul_ps(f[q], sc);
                    }
                    const float *xg = xp + (size_t)g * NT * 64;
                    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
                        acc[t] = _mm512_fmadd_ps(f[q], _mm512_loadu_ps(xg + 64 * t + 16 * q), acc[t]);
                }
                block_flush(acc, ds + (size_t)i * 8, NT, g0 == 0);
            }
        }
        block_store(ds, nr, NT, y + (rb - r0), ldy);
        rb += nr;
    }
}

DOT void fp8_float_kblock(const v4c_matrix *W, int r0, int r1, const float *xf, int scalable, int n, float *y, int ldy, void *scratch) {
    __m512d *ds = scratch;                  /* KB_ROWS x 8 double sums */
    float *xp = (float *)(ds + KB_ROWS * 8); /* x packed: n x cols floats */
#define FP8F_KBLOCK(NT) fp8f_kblock(W, r0, r1, xf, scalable, NT, y, ldy, ds, xp)
    KBLOCK_TOKENS(n, FP8F_KBLOCK);
#undef FP8F_KBLOCK
}

/* NT tokens of FP8 rows [r0, r1) with a float input, as STREAMS streams;
 * the block scales stay on the weights (each stream has its own block).
 * Returns where the rows it left (fewer than STREAMS) begin. */
INLINE int fp8f_streams(const v4c_matrix *W, int r0, int r1, const float *xf, int NT, float *y, int ldy) {
    int per = (r1 - r0) / STREAMS;
    for (int j = 0; j < per; j++) fp8f_rows(W, r0 + j, per, STREAMS, NT, xf, 0, y + j, ldy);
    return r0 + STREAMS * per;
}

/* One token, and two (8192 x 4096 on both cores: 1.23-1.28 ms as a batch,
 * 0.97-1.09 ms so), each in a function of its own: with both loops in one,
 * the one-token loop ran 7% slower. */
DOT int fp8_float_stream(const v4c_matrix *W, int r0, int r1, const float *xf, float *y) { return fp8f_streams(W, r0, r1, xf, 1, y, 1); }
DOT int fp8_float_stream2(const v4c_matrix *W, int r0, int r1, const float *xf, float *y, int ldy) { return fp8f_streams(W, r0, r1, xf, 2, y, ldy); }

/* One token when x takes any scale exactly (float_prepare's xf_scalable):
 * the STREAMS streams of each 128-row block in turn share one copy of x
 * with the block's scales, so no weight is multiplied by its scale (a
 * quarter of the loop's work). Same products, same chains. Takes all the
 * rows (a block's remainder row by row): returns r1. */
DOT int fp8_float_block_streams(const v4c_matrix *W, int r0, int r1, const float *xf, float *y, float *xs) {
    for (int a = r0; a < r1;) {
        int b = (a / 128 + 1) * 128 < r1 ? (a / 128 + 1) * 128 : r1, per = (b - a) / STREAMS;
        scale_for_block(W, a, xf, 1, xs);
        for (int j = 0; j < per; j++) fp8f_rows(W, a + j, per, STREAMS, 1, xs, 1, y + (a - r0) + j, 1);
        for (int r = a + STREAMS * per; r < b; r++) fp8f_rows(W, r, 1, 1, 1, xs, 1, y + (r - r0), 1);
        a = b;
    }
    return r1;
}
