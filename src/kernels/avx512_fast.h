/* Shared pieces of the default AVX-512 kernels (gemv_avx512_fast.c: FP8/FP4
 * through BF16 dot products; gemv_avx512_float.c: float inputs through
 * float32 FMA): the decoders both use, the flush and reduction that define
 * every output's summation chain, and the few-token dispatch. */
#ifndef V4C_AVX512_FAST_H
#define V4C_AVX512_FAST_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

#define DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vbmi")))
#define INLINE DOT static inline __attribute__((always_inline))

enum {
    FLUSH_CHUNKS = 16, /* 512 columns: 32 products per float lane */
    MR = 4,            /* rows per micro-tile (panel rows padded to it) */
    VR = 8,            /* rows decoded together for one token: more streams, fewer flushes per byte */
    VA = 16,           /* accumulators of a few-token pass (rows x tokens): 4 streams x 4 tokens */
    FEW = 4,           /* few_tokens() */
    FEW_SHORT = 8,
    MT = DOT_TOKENS,   /* tokens per micro-tile */
    EXP_LIMIT = SCALE_EXP_LIMIT, /* |log2| of scales and inputs kept far from the float range ends */
};


enum { F_STEPS = 32, F_PANEL = 16 /* float chains: flush every 32 steps of 16; most rows per float panel */ };

/* Panel products are blocked by columns (K_BLOCK, a whole number of flush
 * periods) so that a micro-tile's panel rows and token inputs stay in L1
 * while all tiles of a block run; each output's double sums wait in memory
 * between blocks. The chain of every output is unchanged: its float sums
 * are flushed at each block end anyway. Measured on Zen 5: FP8 GEMM at 512
 * tokens 446 -> 555 GFLOP/s (the unblocked tile read 53 B per cycle from L2). */
enum { K_BLOCK = 1024 };

/* One micro-tile of a column-blocked panel product: tokens [t0, t0+nt),
 * columns [k0, k0+kcols), panel rows [i, i+rows). */
typedef struct {
    int t0, nt, k0, kcols, first, last, i, rows;
} panel_tile;

/* The tiles of n tokens x nr rows x cols in order (token tiles, then column
 * blocks, then row tiles); start from p = {0} with p.nt = 0. 0 at the end. */
static inline int panel_next(panel_tile *p, int n, int nr, int cols) {
    if (p->nt == 0) {
        *p = (panel_tile){0};
    } else if ((p->i += MR) >= nr) {
        p->i = 0;
        if ((p->k0 += K_BLOCK) >= cols) p->k0 = 0, p->t0 += MT;
    }
    if (p->t0 >= n || nr <= 0) return 0;
    p->nt = n - p->t0 < MT ? n - p->t0 : MT;
    p->kcols = cols - p->k0 < K_BLOCK ? cols - p->k0 : K_BLOCK;
    p->first = p->k0 == 0, p->last = p->k0 + p->kcols == cols;
    p->rows = nr - p->i < MR ? nr - p->i : MR;
    return 1;
}

/* K(NT) for the tile's token count, NT a constant. */
#define TILE_TOKENS(nt, K)                                                                                                                \
    do {                                                                                                                                  \
        switch (nt) {                                                                                                                     \
        case 1: K(1); break;                                                                                                              \
        case 2: K(2); break;                                                                                                              \
        case 3: K(3); break;                                                                                                              \
        case 4: K(4); break;                                                                                                              \
        case 5: K(5); break;                                                                                                              \
        default: K(6); break;                                                                                                             \
        }                                                                                                                                 \
    } while (0)

/* K(NT) for the 3..8 tokens of a column-blocked stream, NT a constant. */
#define KBLOCK_TOKENS(nt, K)                                                                                                              \
    do {                                                                                                                                  \
        switch (nt) {                                                                                                                     \
        case 3: K(3); break;                                                                                                              \
        case 4: K(4); break;                                                                                                              \
        case 5: K(5); break;                                                                                                              \
        case 6: K(6); break;                                                                                                              \
        case 7: K(7); break;                                                                                                              \
        default: K(8); break;                                                                                                             \
        }                                                                                                                                 \
    } while (0)

extern uint8_t fast_fp8_hi[128], fast_fp8_lo[128]; /* bf16 bytes of e4m3 magnitude codes */
void fast_tables_init(void);                        /* once, before any kernel runs */

typedef struct {
    __m512i hi0, hi1, lo0, lo1, sign;
} fp8_tables;

INLINE fp8_tables fp8_tables_load(void) {
    fp8_tables t = {_mm512_loadu_si512(fast_fp8_hi), _mm512_loadu_si512(fast_fp8_hi + 64), _mm512_loadu_si512(fast_fp8_lo),
                    _mm512_loadu_si512(fast_fp8_lo + 64), _mm512_set1_epi8((char)0x80)};
    return t;
}

/* The weight line, loaded once. Left to itself GCC folds the load into
 * each instruction that uses it (vpermi2b overwrites its index, so it
 * reloads rather than copies): three loads of every line, and from memory
 * each extra load of a line costs read bandwidth (docs/performance.md). */
INLINE __m512i load_once(const void *p) {
    __m512i b = _mm512_loadu_si512(p);
    __asm__("" : "+v"(b));
    return b;
}

INLINE __m512 load_once_ps(const float *p) { return _mm512_castsi512_ps(load_once(p)); }

/* A vector of bf16 pairs (row i's columns c and c + 1 in 32-bit lane i,
 * c in the low half) as two float vectors: column c, then c + 1. */
INLINE void bf16_pairs_f32(__m512i w, __m512 *even, __m512 *odd) {
    *even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000)));
}

INLINE void fp8_decode(const fp8_tables *T, const uint8_t *p, __m512i *w0, __m512i *w1) {
    __m512i b = load_once(p);
    __m512i hb = _mm512_permutex2var_epi8(T->hi0, b, T->hi1); /* index bits 0-6: the magnitude */
    hb = _mm512_ternarylogic_epi32(hb, b, T->sign, 0xF8);       /* hb | (b & 0x80) */
    __m512i lb = _mm512_permutex2var_epi8(T->lo0, b, T->lo1);
    *w0 = _mm512_unpacklo_epi8(lb, hb);
    *w1 = _mm512_unpackhi_epi8(lb, hb);
}

extern uint8_t fast_fp4_lo[64], fast_fp4_hi[64];    /* bf16 bytes of the 16 e2m1 codes, once per 128-bit lane */

/* Multiply the nonzero bf16 words of v by 2^e (e already shifted by 7). */
INLINE __m512i bf16_scale(__m512i v, __m512i e7) {
    __mmask32 nz = _mm512_test_epi16_mask(v, _mm512_set1_epi16(0x7FFF));
    return _mm512_mask_add_epi16(v, nz, v, e7);
}

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

typedef struct {
    __m512i lo, hi, nibble;
} fp4_tables;

INLINE fp4_tables fp4_tables_load(void) {
    fp4_tables t = {_mm512_loadu_si512(fast_fp4_lo), _mm512_loadu_si512(fast_fp4_hi), _mm512_set1_epi8(15)};
    return t;
}

/* 64 bytes of e2m1 codes as 4 vectors of unscaled bf16 (in-lane shuffles
 * only): c[0] and c[1] the low nibbles of bytes 0-7 and 8-15 of each
 * 128-bit lane, c[2] and c[3] the high nibbles of the same bytes. */
INLINE void fp4_decode_line(const fp4_tables *T, const uint8_t *p, __m512i c[4]) {
    __m512i b = load_once(p);
    __m512i lo = _mm512_and_si512(b, T->nibble), hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), T->nibble);
    __m512i l0 = _mm512_shuffle_epi8(T->lo, lo), h0 = _mm512_shuffle_epi8(T->hi, lo);
    __m512i l1 = _mm512_shuffle_epi8(T->lo, hi), h1 = _mm512_shuffle_epi8(T->hi, hi);
    c[0] = _mm512_unpacklo_epi8(l0, h0), c[1] = _mm512_unpackhi_epi8(l0, h0);
    c[2] = _mm512_unpacklo_epi8(l1, h1), c[3] = _mm512_unpackhi_epi8(l1, h1);
}

/* The bf16 of the 16 e2m1 codes, twice (a word permute reads 5 index bits). */
extern uint16_t fast_fp4_bf16[32];

INLINE __m512i fp4_panel_table(void) { return _mm512_loadu_si512(fast_fp4_bf16); }

/* A line of an FP4 panel (matrix.c, panel_index: 16-bit word 2i + e holds
 * row i's columns e, 2 + e, 4 + e, 6 + e, a nibble each, low first) as 4
 * vectors of unscaled bf16, c[k] = column pair k in 32-bit lane i: nibble k
 * of every word through one word permute (vpermw, which reads the low 5
 * bits of each index: the table holds the 16 values twice). 3 shifts and
 * 4 permutes; the row layout's decoder above takes 2 ands, a shift, 4
 * byte shuffles and 4 unpacks, and on a CPU whose vdpbf16ps occupies
 * both vector ports (Intel Xeon, model 207: two cycles each) the decode
 * and the 4 dot products of a line compete for the same ports. */
INLINE void fp4_panel_decode(__m512i table, const uint8_t *p, __m512i c[4]) {
    __m512i b = load_once(p);
    c[0] = _mm512_permutexvar_epi16(b, table);
    c[1] = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 4), table);
    c[2] = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 8), table);
    c[3] = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 12), table);
}

/* The 16 e2m1 values as floats (fp4_fma's vpermps table). */
extern float fast_fp4_f32[16];
/* 1: one-token FP4 panels run float FMAs, each column pair's odd product
 * and then its even one: vdpbf16ps's own order, the same bits where
 * dpbf16_is_two_fmas (gemv_avx512_fast.c) found it so. */
extern int fast_fp4_fma;

/* Row r exactly (double sums of the decoded row with x): what the fast
 * kernels fall back to for scales they cannot carry. wrow: cols floats. */
void exact_row(const v4c_matrix *W, int r, const float *x, int ldx, int n, float *y, int ldy, float *wrow);
/* Whether the scales of the FP8 row block holding row r stay within EXP_LIMIT. */
int fp8_block_ok(const v4c_matrix *W, int r);

/* A one-token panel stream (FP8/FP4 panels, the head's BF16 ones) reads
 * each line's successors 2 KB ahead into L2 and 384 bytes ahead into L1,
 * a line each per line read (past a panel's end it touches the next panel
 * of its sub-span, or of another: a hint, never a fault). The hardware
 * alone ramps up again on each of the short streams an expert's shares
 * make, and with L2 prefetch alone each line still waited in L2. Measured
 * from memory on both cores, 4 panels a thread (alternating builds, 3
 * rounds, the machine's read 61-67 GB/s): FP4 47-53 GB/s with 4 KB ahead
 * into L2 only, 50-58 with 2 KB, 49-58 with both levels; FP8 56-68, 65-70,
 * 65-76; the head 64.8-71.1 -> 67.2-73.8 GB/s. Further into L1 (640 B-1
 * KB) was slower, as was 4 KB into L2 with L1 (before any: no prefetch,
 * decode on the bench model 9.3-26.8 -> 23.3-27.1 tok/s in a fast phase). */
enum { AHEAD_L2 = 2048, AHEAD_L1 = 384 };

INLINE void prefetch_ahead(const void *line) {
    _mm_prefetch((const char *)line + AHEAD_L2, _MM_HINT_T1);
    _mm_prefetch((const char *)line + AHEAD_L1, _MM_HINT_T0);
}

/* One token streams short rows, which the hardware prefetcher picks up
 * late: while a group of rows (`bytes` from `group`) is being read, step s
 * of `steps` brings the matching slice of the next group into L2.
 * Measured: faster on Zen 4; on Zen 5 the hardware does better alone (FP8
 * and BF16 GEMV 27-31 -> 33-40 and 32-41 -> 41-46 GB/s), so fast_prefetch
 * is off there (fast_tables_init; V4C_PREFETCH=0|1 overrides). */
extern int fast_prefetch;
INLINE void prefetch_next(const void *group, size_t bytes, int s, int steps) {
    if (!fast_prefetch) return;
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

/* The sums of NR rows x NT tokens of chains, ds[i * stride + t], into
 * y[t * ldy + i] for the rows below nr. */
INLINE void store_sums(const __m512d *ds, int NR, int NT, int stride, int nr, float *y, int ldy) {
    float out[MR * MT > VA ? MR * MT : VA];
    if (NT == stride) finish_all(ds, NR * NT, out);
    else _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
        out[i * stride + t] = finish(ds[i * stride + t]);
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) if (i < nr) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
        y[(size_t)t * ldy + i] = out[i * stride + t];
}

/* The sums of NR rows x NT tokens of a pass on the fly, ds[i * NT + t],
 * into y[t * ldy + i * rs] (rs: the rows' step, as the kernels take them). */
INLINE void store_pass(const __m512d *ds, int NR, int NT, int rs, float *y, int ldy) {
    float out[VA];
    finish_all(ds, NR * NT, out);
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++)
        y[(size_t)t * ldy + (size_t)i * rs] = out[i * NT + t];
}

/* Up to this many tokens, rows are decoded on the fly; more go through a
 * panel (measured faster from 5 tokens, from 9 on rows of up to 1024
 * columns, where a panel's per-output costs weigh more). */
static inline int few_tokens(int cols) { return cols <= 1024 ? FEW_SHORT : FEW; }

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


/* One token reads STREAMS consecutive sub-spans of a thread's rows side by
 * side (gemv_avx512_fast.c, dot_stream). */
enum { STREAMS = 4 };

/* Column-blocked streams of a few tokens (dot_kblock, float_kblock,
 * fp8f_kblock): blocks of KB_ROWS rows run one flush period at a time,
 * their double sums waiting in memory, while the next block (contiguous:
 * the rows follow each other) is brought in by block_prefetch (the panels
 * of rows_span bring a thread's next span into L2 the same way, a slice
 * per tile). 16 rows: a BF16 block's flush period (16 KB) and the 8
 * tokens' x for it (16 KB) share L1 (48 KB) with room to spare; at 32 rows
 * they filled it. Measured
 * on Zen 5, the 129,280 x 4096 head at 8 tokens, alternating builds:
 * 32 rows 48.7-50.1 ms, 16 rows 44.8-46.9, 8 rows 48.6-52.9; FP8 8192 x
 * 8192 about the same. */
enum { KB_ROWS = 16 };

typedef struct {
    const char *next;
    size_t ahead, slice, fetched;
    int every, tick; /* block_prefetch_tick: a line every `every` ticks */
} block_prefetch;

/* `rows` rows (none if <= 0) from row `next` of data, over `units` steps
 * (block_prefetch_step) or ticks (block_prefetch_tick). */
static inline block_prefetch block_prefetch_start(const void *data, size_t row_bytes, int next, int rows, size_t units) {
    block_prefetch p = {(const char *)data + (size_t)next * row_bytes, rows > 0 ? (size_t)rows * row_bytes : 0, 0, 0, 1, 0};
    p.slice = (p.ahead / (units ? units : 1) + 63) & ~(size_t)63;
    size_t lines = p.ahead / 64;
    p.every = lines && units / lines > 1 ? (int)(units / lines) : 1;
    return p;
}

/* One line of the next block every `every` ticks, ticked once per step of
 * the column-blocked kernels: spread between the loads that use the
 * current block, rather than a row's slice at once (the head at 8 tokens,
 * alternating runs: 47.4-50.1 -> 43.7-45.9 ms). Into L1 as well (T0): by
 * hint the L2 alone was 5% faster, T0 9%. */
INLINE void block_prefetch_tick(block_prefetch *p) {
    if (++p->tick < p->every) return;
    p->tick = 0;
    if (p->fetched < p->ahead) _mm_prefetch(p->next + p->fetched, _MM_HINT_T0), p->fetched += 64;
}

/* The rows of the block after [rb, rb + nr), within a span ending at r1. */
static inline int block_after(int rb, int nr, int r1) { return r1 - rb - nr < KB_ROWS ? r1 - rb - nr : KB_ROWS; }

INLINE void block_prefetch_step(block_prefetch *p) {
    for (size_t o = 0; o < p->slice && p->fetched < p->ahead; o += 64, p->fetched += 64) _mm_prefetch(p->next + p->fetched, _MM_HINT_T1);
}

/* A row's NT float chains at the end of a flush period into its double
 * sums d (zeroed first in the row's first period). */
INLINE void block_flush(__m512 *acc, __m512d *d, int NT, int first) {
    if (first) _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) d[t] = _mm512_setzero_pd();
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) flush(&acc[t], &d[t]);
}

/* The NT sums of each of nr rows (ds[i * 8 + t]) into y[t * ldy + i]. */
INLINE void block_store(const __m512d *ds, int nr, int NT, float *y, int ldy) {
    for (int i = 0; i < nr; i++) {
        float out[8];
        finish_all(ds + (size_t)i * 8, NT, out);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) y[(size_t)t * ldy + i] = out[t];
    }
}

/* Rows [r0, r1) (whole panels) of a panel-packed FP8/FP4 matrix for any
 * number of tokens with a quantized input in column order
 * (dot_prepare_pairs; gemv_avx512_dot_panels.c). scratch: DOT_SCRATCH. */
void dot_panels(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch);

/* n float inputs through rows [r0, r1) of a panel-packed F32/BF16 matrix
 * (gemv_avx512_panels.c); scratch: 8 * cols floats. */
void panel_product(const v4c_matrix *W, int r0, int r1, const float *x, int ldx, int n, float *y, int ldy, void *scratch);

/* Kernels of gemv_avx512_float.c the dot path and the table use. */
void fast_rows_float(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch);
/* FP8 rows [r0, r1) of one 128-row block against n float inputs laid out by
 * float_prepare. */
void float_stream(const v4c_matrix *W, int r0, int r1, const float *x, int ldx, int n, float *y, int ldy, void *scratch);
int fp8_float_stream(const v4c_matrix *W, int r0, int r1, const float *xf, float *y);
int fp8_float_block_streams(const v4c_matrix *W, int r0, int r1, const float *xf, float *y, float *xs);
int fp8_float_stream2(const v4c_matrix *W, int r0, int r1, const float *xf, float *y, int ldy);
/* 3..8 tokens of FP8 rows [r0, r1) with a float input (float_prepare's). */
void fp8_float_kblock(const v4c_matrix *W, int r0, int r1, const float *xf, int scalable, int n, float *y, int ldy, void *scratch);
void fast_fp8_float_span(const v4c_matrix *W, int r0, int r1, const float *xf, int xf_scalable, int n, float *y, int ldy, float *panel);

#endif
