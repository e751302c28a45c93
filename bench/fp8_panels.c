/* Prototype for the next step of the few-token products (docs/performance.md,
 * "FP8 in panels: a measured prototype"): FP8 weights packed in panels of 16
 * rows, one row per 32-bit lane, so that each token's input is a broadcast
 * bf16 pair and every decoded weight vector serves all tokens of a batch, as
 * the head's panels do (gemv_avx512_panels.c). Not used by the model yet.
 *
 * Layout: panel p (rows 16p..16p+15), column quad j (columns 4j..4j+3): 64
 * bytes; in 128-bit lane q, bytes 0-7 hold rows 4q..4q+3 at columns 4j and
 * 4j+1, bytes 8-15 the same rows at 4j+2 and 4j+3. fp8 byte tables and
 * unpacklo/unpackhi then give two vectors in which lane i is row 16p+i with
 * a column pair: one vdpbf16ps per pair and token. Each output is one float
 * chain in column order, added to a double every 512 columns.
 *
 * It leaves the block scales out (all 1 here): a real kernel puts them on x
 * (one copy per 128-row block) or on the decoded weights.
 *
 * Prints the largest error against a double reference, then GFLOP/s and
 * GB/s from memory against the library's kernels (linear()) at the same
 * token count, 4096 x 8192 (wo_b's shape), COPIES copies read in turn.
 * usage: bench/fp8_panels.sh [COPIES] [TOKENS: 1, 2, 4 or 8] */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "formats/dtype.h"
#include "kernels/matrix.h"

#define DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vbmi")))

enum { ROWS = 4096, COLS = 8192, PERIOD = 128 /* column quads per flush: 512 columns */ };

static uint8_t table_hi[128], table_lo[128]; /* bf16 bytes of the e4m3 magnitudes */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float e4m3(int code) {
    int m = code & 127, e = m >> 3, f = m & 7;
    float v = e ? ldexpf((float)(8 + f), e - 10) : ldexpf((float)f, -9);
    return code & 128 ? -v : v;
}

static uint16_t bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static void pack(const uint8_t *w, uint8_t *out) {
    for (int p = 0; p < ROWS / 16; p++)
        for (int j = 0; j < COLS / 4; j++) {
            uint8_t *o = out + ((size_t)p * (COLS / 4) + j) * 64;
            for (int q = 0; q < 4; q++)
                for (int m = 0; m < 4; m++) {
                    const uint8_t *src = w + (size_t)(16 * p + 4 * q + m) * COLS + 4 * j;
                    o[16 * q + 2 * m] = src[0], o[16 * q + 2 * m + 1] = src[1];
                    o[16 * q + 8 + 2 * m] = src[2], o[16 * q + 8 + 2 * m + 1] = src[3];
                }
        }
}

/* R panels (R consecutive panels from P) x NT tokens; xp[pair * NT + t]:
 * token t's bf16 pair of columns 2 pair, 2 pair + 1. */
#define PANELS(R, NT)                                                                                                                     \
    DOT static void panels_##R##x##NT(const uint8_t *P, const uint32_t *xp, float *y) {                                                  \
        const __m512i hi0 = _mm512_loadu_si512(table_hi), hi1 = _mm512_loadu_si512(table_hi + 64);                                      \
        const __m512i lo0 = _mm512_loadu_si512(table_lo), lo1 = _mm512_loadu_si512(table_lo + 64), sign = _mm512_set1_epi8((char)0x80); \
        __m512 acc[R][NT];                                                                                                                \
        __m512d dlo[R][NT], dhi[R][NT];                                                                                                   \
        for (int p = 0; p < R; p++)                                                                                                       \
            for (int t = 0; t < NT; t++) acc[p][t] = _mm512_setzero_ps(), dlo[p][t] = dhi[p][t] = _mm512_setzero_pd();                   \
        for (int j = 0; j < COLS / 4; j++) {                                                                                              \
            _Pragma("GCC unroll 4") for (int p = 0; p < R; p++) {                                                                        \
                __m512i b = _mm512_loadu_si512(P + (size_t)p * 16 * COLS + (size_t)j * 64);                                               \
                __asm__("" : "+v"(b)); /* one load of the line (load_once) */                                                            \
                __m512i hb = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, b, hi1), b, sign, 0xF8);                             \
                __m512i lb = _mm512_permutex2var_epi8(lo0, b, lo1);                                                                       \
                __m512i w0 = _mm512_unpacklo_epi8(lb, hb), w1 = _mm512_unpackhi_epi8(lb, hb);                                             \
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                                                   \
                    acc[p][t] = _mm512_dpbf16_ps(acc[p][t], (__m512bh)w0, (__m512bh)_mm512_set1_epi32((int)xp[(size_t)2 * j * NT + t])); \
                    acc[p][t] = _mm512_dpbf16_ps(acc[p][t], (__m512bh)w1, (__m512bh)_mm512_set1_epi32((int)xp[(size_t)(2 * j + 1) * NT + t])); \
                }                                                                                                                         \
            }                                                                                                                             \
            if (j % PERIOD == PERIOD - 1 || j == COLS / 4 - 1)                                                                            \
                for (int p = 0; p < R; p++)                                                                                               \
                    for (int t = 0; t < NT; t++) {                                                                                        \
                        dlo[p][t] = _mm512_add_pd(dlo[p][t], _mm512_cvtps_pd(_mm512_castps512_ps256(acc[p][t])));                        \
                        dhi[p][t] = _mm512_add_pd(dhi[p][t], _mm512_cvtps_pd(_mm512_extractf32x8_ps(acc[p][t], 1)));                      \
                        acc[p][t] = _mm512_setzero_ps();                                                                                  \
                    }                                                                                                                     \
        }                                                                                                                                 \
        for (int p = 0; p < R; p++)                                                                                                       \
            for (int t = 0; t < NT; t++) {                                                                                                \
                _mm256_storeu_ps(y + (size_t)t * ROWS + 16 * p, _mm512_cvtpd_ps(dlo[p][t]));                                              \
                _mm256_storeu_ps(y + (size_t)t * ROWS + 16 * p + 8, _mm512_cvtpd_ps(dhi[p][t]));                                          \
            }                                                                                                                             \
    }
PANELS(4, 1)
PANELS(4, 2)
PANELS(4, 4)
PANELS(2, 8)

/* All panels of one packed matrix, groups of R panels taken as threads come free. */
static void product(const uint8_t *P, const uint32_t *xp, int nt, float *y) {
    int R = nt == 8 ? 2 : 4;
#pragma omp parallel for schedule(dynamic, 4)
    for (int p = 0; p < ROWS / 16; p += R) {
        const uint8_t *at = P + (size_t)p * 16 * COLS;
        float *yp = y + 16 * p;
        if (nt == 1) panels_4x1(at, xp, yp);
        else if (nt == 2) panels_4x2(at, xp, yp);
        else if (nt == 4) panels_4x4(at, xp, yp);
        else panels_2x8(at, xp, yp);
    }
}

static void *huge(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) exit(1);
    madvise(p, n, MADV_HUGEPAGE);
    return p;
}

int main(int argc, char **argv) {
    int copies = argc > 1 ? atoi(argv[1]) : 8, nt = argc > 2 ? atoi(argv[2]) : 8;
    if (copies < 1 || (nt != 1 && nt != 2 && nt != 4 && nt != 8)) {
        fprintf(stderr, "usage: fp8_panels [COPIES] [TOKENS: 1, 2, 4 or 8]\n");
        return 1;
    }
    for (int m = 0; m < 128; m++) table_hi[m] = (uint8_t)(bf16(e4m3(m)) >> 8), table_lo[m] = (uint8_t)bf16(e4m3(m));
    size_t bytes = (size_t)ROWS * COLS;
    uint8_t *W = huge(bytes * copies), *P = huge(bytes * copies), *scales = malloc((ROWS / 128) * (COLS / 128));
    memset(scales, 127, (ROWS / 128) * (COLS / 128)); /* e8m0 1.0: the prototype has no scales */
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < bytes * copies; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        W[i] = (s & 127) == 127 ? 0x10 : (uint8_t)s; /* no NaN codes */
    }
    for (int c = 0; c < copies; c++) pack(W + bytes * c, P + bytes * c);
    float *x = malloc(sizeof(float) * COLS * nt), *y = malloc(sizeof(float) * ROWS * nt), *y_lib = malloc(sizeof(float) * ROWS * nt);
    for (int i = 0; i < COLS * nt; i++) x[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    for (int t = 0; t < nt; t++) fp8_quant(x + (size_t)t * COLS, COLS, 128);
    uint32_t *xp = malloc(sizeof(uint32_t) * COLS / 2 * nt);
    for (int c = 0; c < COLS / 2; c++)
        for (int t = 0; t < nt; t++)
            xp[(size_t)c * nt + t] = bf16(x[(size_t)t * COLS + 2 * c]) | (uint32_t)bf16(x[(size_t)t * COLS + 2 * c + 1]) << 16;

    product(P, xp, nt, y); /* every 7th row of the first copy against double sums */
    double worst = 0;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < ROWS; r += 7) {
            double sum = 0, mag = 0;
            for (int c = 0; c < COLS; c++) {
                double v = (double)e4m3(W[(size_t)r * COLS + c]) * x[(size_t)t * COLS + c];
                sum += v, mag += fabs(v);
            }
            double err = fabs(sum - y[(size_t)t * ROWS + r]) / mag;
            if (err > worst) worst = err;
        }
    printf("%d token%s: largest |error| / sum |w x| %.2e\n", nt, nt > 1 ? "s" : "", worst);

    v4c_matrix *M = calloc(copies, sizeof *M);
    for (int c = 0; c < copies; c++) M[c] = (v4c_matrix){.kind = WK_FP8, .op = OP_OTHER, .rows = ROWS, .cols = COLS, .data = W + bytes * c, .scale = scales};
    double flops = 2.0 * ROWS * COLS * nt * copies, read = (double)bytes * copies;
    for (int round = 0; round < 3; round++) { /* alternating */
        double t0 = now();
        for (int c = 0; c < copies; c++) product(P + bytes * c, xp, nt, y);
        double tp = now() - t0;
        t0 = now();
        for (int c = 0; c < copies; c++) linear(y_lib, &M[c], x, nt);
        double tl = now() - t0;
        printf("  panels %6.1f GFLOP/s %5.1f GB/s | library %6.1f GFLOP/s %5.1f GB/s\n", flops / tp / 1e9, read / tp / 1e9, flops / tl / 1e9, read / tl / 1e9);
    }
    return 0;
}
