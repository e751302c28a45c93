/* AVX-512 kernels: weights decoded in registers (e4m3 by bit placement,
 * e2m1 by a 16-entry table, bf16 by a shift), products and sums in double
 * so they match the portable kernels (docs/numerics.md). Up to four inputs
 * share each decoded weight vector. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/backend.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
enum { TOK = 4 }; /* inputs per pass */

/* 16 e4m3 codes -> floats / 256: the 7 magnitude bits placed as an fp16
 * exponent and mantissa give 2^-8 times the e4m3 value for normal and
 * subnormal codes alike, and the hardware fp16 conversion yields normal
 * floats (no slow subnormal path). The 2^8 is folded into the inputs. */
#define E4M3_FP16_SHIFT 0x1p8

AVX512 static inline __attribute__((always_inline)) __m512 decode_e4m3(const uint8_t *p) {
    __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
    __m256i t = _mm256_slli_epi16(v, 7); /* sign lands on bit 14: t + (t & bit 14) moves it to 15 */
    __m256i h = _mm256_add_epi16(t, _mm256_and_si256(t, _mm256_set1_epi16(0x4000)));
    return _mm512_cvtph_ps(h);
}

AVX512 static inline __m512 decode_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

AVX512 static inline double hsum(__m512d v) { return _mm512_reduce_add_pd(v); }

/* acc[2t], acc[2t+1] += the two halves of w16 . x_t[k..k+16), in double:
 * separate accumulators so consecutive FMAs do not wait on each other. */
AVX512 static inline __attribute__((always_inline)) void fma16(__m512 w, const double *xd, size_t ldxd, int nt, int k, __m512d *acc) {
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(w));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)));
    _Pragma("GCC unroll 4")
    for (int t = 0; t < nt; t++) {
        acc[2 * t] = _mm512_fmadd_pd(lo, _mm512_loadu_pd(xd + t * ldxd + k), acc[2 * t]);
        acc[2 * t + 1] = _mm512_fmadd_pd(hi, _mm512_loadu_pd(xd + t * ldxd + k + 8), acc[2 * t + 1]);
    }
}

/* Accumulator sets for NT inputs: two halves x two interleaved k steps. */
#define ACC_DECL(NT) __m512d acc[4 * TOK]; _Pragma("GCC unroll 16") for (int a_ = 0; a_ < 4 * (NT); a_++) acc[a_] = _mm512_setzero_pd()
AVX512 static inline __attribute__((always_inline)) double acc_sum(const __m512d *acc, int t, int NT) {
    return hsum(_mm512_add_pd(_mm512_add_pd(acc[2 * t], acc[2 * t + 1]), _mm512_add_pd(acc[2 * NT + 2 * t], acc[2 * NT + 2 * t + 1])));
}

/* One weight row against NT inputs (NT a constant after inlining, so the
 * accumulators stay in registers). */
#define INLINE AVX512 static inline __attribute__((always_inline))

/* FP8 rows: the 128x128 block scales are folded into the inputs (exact for
 * power-of-two scales), so the inner loop is decode + FMA over the row. */
INLINE void row_fp8(const uint8_t *w, const double *xs, int cols, int NT, float *y, int ldy) {
    ACC_DECL(NT);
    for (int k = 0; k < cols; k += 32) {
        fma16(decode_e4m3(w + k), xs, cols, NT, k, acc);
        fma16(decode_e4m3(w + k + 16), xs, cols, NT, k + 16, acc + 2 * NT);
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < NT; t++) y[(size_t)t * ldy] = (float)acc_sum(acc, t, NT);
}

AVX512 static void rows_fp8(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch) {
    (void)x, (void)ldx;
    int cols = W->cols, nb = (cols + 127) / 128;
    double *xs = scratch; /* TOK * cols: the inputs times the row block's scales */
    for (int j0 = 0; j0 < n; j0 += TOK) {
        int nt = n - j0 < TOK ? n - j0 : TOK, block = -1;
        for (int r = r0; r < r1; r++) {
            if (r / 128 != block) { /* new row block: rescale the inputs */
                block = r / 128;
                for (int b = 0; b < nb; b++) {
                    double sc = fp8_block_scale(W, r, b) * E4M3_FP16_SHIFT;
                    for (int t = 0; t < nt; t++)
                        for (int k = b * 128; k < b * 128 + 128 && k < cols; k++) xs[(size_t)t * cols + k] = xd[(size_t)(j0 + t) * cols + k] * sc;
                }
            }
            const uint8_t *w = (const uint8_t *)W->data + (size_t)r * cols;
            float *yr = y + (size_t)j0 * ldy + (r - r0);
            switch (nt) {
            case 1: row_fp8(w, xs, cols, 1, yr, ldy); break;
            case 2: row_fp8(w, xs, cols, 2, yr, ldy); break;
            case 3: row_fp8(w, xs, cols, 3, yr, ldy); break;
            default: row_fp8(w, xs, cols, 4, yr, ldy); break;
            }
        }
    }
}

INLINE void row_fp4(const v4c_matrix *W, int r, const double *xj, int cols, int NT, float *y, int ldy) {
    const __m512d t0 = _mm512_setr_pd(0, 0.5, 1, 1.5, 2, 3, 4, 6), t1 = _mm512_setr_pd(-0.0, -0.5, -1, -1.5, -2, -3, -4, -6);
    const __m512i low4 = _mm512_set1_epi64(15);
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r * (cols / 2);
    const uint8_t *sc = (const uint8_t *)W->scale + (size_t)r * (cols / 32);
    __m512d acc[TOK], blk[4 * TOK];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_pd();
    for (int b = 0; b < cols; b += 32) {
        _Pragma("GCC unroll 16")
        for (int a = 0; a < 4 * NT; a++) blk[a] = _mm512_setzero_pd();
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) { /* 8 bytes = 16 elements: even ones in the low nibbles */
            int k = b + 16 * h;
            __m512i v = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(w + k / 2)));
            __m512d we = _mm512_permutex2var_pd(t0, _mm512_and_si512(v, low4), t1);
            __m512d wo = _mm512_permutex2var_pd(t0, _mm512_srli_epi64(v, 4), t1);
            _Pragma("GCC unroll 4")
            for (int t = 0; t < NT; t++) {
                blk[4 * t + 2 * h] = _mm512_fmadd_pd(we, _mm512_loadu_pd(xj + (size_t)t * cols + k), blk[4 * t + 2 * h]);
                blk[4 * t + 2 * h + 1] = _mm512_fmadd_pd(wo, _mm512_loadu_pd(xj + (size_t)t * cols + k + 8), blk[4 * t + 2 * h + 1]);
            }
        }
        __m512d s = _mm512_set1_pd(e8m0_to_f32(sc[b / 32]));
        _Pragma("GCC unroll 4")
        for (int t = 0; t < NT; t++)
            acc[t] = _mm512_fmadd_pd(_mm512_add_pd(_mm512_add_pd(blk[4 * t], blk[4 * t + 1]), _mm512_add_pd(blk[4 * t + 2], blk[4 * t + 3])), s, acc[t]);
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < NT; t++) y[(size_t)t * ldy] = (float)hsum(acc[t]);
}

AVX512 static void rows_fp4(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch) {
    (void)x, (void)ldx, (void)scratch;
    int cols = W->cols;
    for (int r = r0; r < r1; r++)
        for (int j0 = 0; j0 < n; j0 += TOK) {
            const double *xj = xd + (size_t)j0 * cols;
            float *yr = y + (size_t)j0 * ldy + (r - r0);
            switch (n - j0 < TOK ? n - j0 : TOK) {
            case 1: row_fp4(W, r, xj, cols, 1, yr, ldy); break;
            case 2: row_fp4(W, r, xj, cols, 2, yr, ldy); break;
            case 3: row_fp4(W, r, xj, cols, 3, yr, ldy); break;
            default: row_fp4(W, r, xj, cols, 4, yr, ldy); break;
            }
        }
}

/* F32 and BF16 rows: decode 16 weights, no block scales. */
INLINE void row_plain(const void *wrow, int is_bf16, const double *xj, int cols, int NT, float *y, int ldy) {
    ACC_DECL(NT);
    int k = 0;
    for (; k + 32 <= cols; k += 32) {
        __m512 w0 = is_bf16 ? decode_bf16((const uint16_t *)wrow + k) : _mm512_loadu_ps((const float *)wrow + k);
        __m512 w1 = is_bf16 ? decode_bf16((const uint16_t *)wrow + k + 16) : _mm512_loadu_ps((const float *)wrow + k + 16);
        fma16(w0, xj, cols, NT, k, acc);
        fma16(w1, xj, cols, NT, k + 16, acc + 2 * NT);
    }
    if (k < cols) fma16(is_bf16 ? decode_bf16((const uint16_t *)wrow + k) : _mm512_loadu_ps((const float *)wrow + k), xj, cols, NT, k, acc);
    _Pragma("GCC unroll 4")
    for (int t = 0; t < NT; t++) y[(size_t)t * ldy] = (float)acc_sum(acc, t, NT);
}

AVX512 static void rows_plain(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch) {
    int cols = W->cols, bf16 = W->kind == WK_BF16;
    if (cols % 16) {
        backend_ref.rows[W->kind](W, r0, r1, x, xd, ldx, n, y, ldy, scratch);
        return;
    }
    for (int r = r0; r < r1; r++) {
        const void *wrow = (const char *)W->data + (size_t)r * cols * (bf16 ? 2 : 4);
        for (int j0 = 0; j0 < n; j0 += TOK) {
            const double *xj = xd + (size_t)j0 * cols;
            float *yr = y + (size_t)j0 * ldy + (r - r0);
            int nt = n - j0 < TOK ? n - j0 : TOK;
            if (bf16) {
                switch (nt) {
                case 1: row_plain(wrow, 1, xj, cols, 1, yr, ldy); break;
                case 2: row_plain(wrow, 1, xj, cols, 2, yr, ldy); break;
                case 3: row_plain(wrow, 1, xj, cols, 3, yr, ldy); break;
                default: row_plain(wrow, 1, xj, cols, 4, yr, ldy); break;
                }
            } else {
                switch (nt) {
                case 1: row_plain(wrow, 0, xj, cols, 1, yr, ldy); break;
                case 2: row_plain(wrow, 0, xj, cols, 2, yr, ldy); break;
                case 3: row_plain(wrow, 0, xj, cols, 3, yr, ldy); break;
                default: row_plain(wrow, 0, xj, cols, 4, yr, ldy); break;
                }
            }
        }
    }
}

const kernel_backend backend_avx512 = {"avx512-exact", {rows_plain, rows_plain, rows_fp8, rows_fp4}, NULL, NULL, NULL, 0};
