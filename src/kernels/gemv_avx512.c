/* AVX-512 kernels: weights decoded in registers (e4m3 by bit placement,
 * e2m1 by a 16-entry table, bf16 by a shift), products and sums in double
 * so they match the portable kernels (docs/numerics.md). Up to four inputs
 * share each decoded weight vector. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/backend.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
enum { TOK = 4 }; /* inputs per pass */

/* 16 e4m3 codes -> floats: magnitude bits placed as a float exponent and
 * mantissa, then x 2^120 (exact) re-biases normals and subnormals alike. */
AVX512 static inline __m512 decode_e4m3(const uint8_t *p) {
    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    __m512i mag = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x7F)), 20);
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x80)), 24);
    return _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(mag, sign)), _mm512_set1_ps(0x1p120f));
}

AVX512 static inline __m512 decode_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

AVX512 static inline double hsum(__m512d v) { return _mm512_reduce_add_pd(v); }

/* acc[t] += w16 . x_t[k..k+16) in double for nt inputs. */
AVX512 static inline void fma16(__m512 w, const double *xd, size_t ldxd, int nt, int k, __m512d *acc) {
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(w));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)));
    for (int t = 0; t < nt; t++) {
        acc[t] = _mm512_fmadd_pd(lo, _mm512_loadu_pd(xd + t * ldxd + k), acc[t]);
        acc[t] = _mm512_fmadd_pd(hi, _mm512_loadu_pd(xd + t * ldxd + k + 8), acc[t]);
    }
}

AVX512 static void rows_fp8(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy) {
    (void)x, (void)ldx;
    int cols = W->cols;
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * cols;
        for (int j0 = 0; j0 < n; j0 += TOK) {
            int nt = n - j0 < TOK ? n - j0 : TOK;
            const double *xj = xd + (size_t)j0 * cols;
            __m512d acc[TOK], blk[TOK];
            for (int t = 0; t < TOK; t++) acc[t] = _mm512_setzero_pd();
            for (int b = 0; b < cols; b += 128) {
                for (int t = 0; t < TOK; t++) blk[t] = _mm512_setzero_pd();
                for (int k = b; k < b + 128; k += 16) fma16(decode_e4m3(w + k), xj, cols, nt, k, blk);
                __m512d s = _mm512_set1_pd(fp8_block_scale(W, r, b / 128));
                for (int t = 0; t < nt; t++) acc[t] = _mm512_fmadd_pd(blk[t], s, acc[t]);
            }
            for (int t = 0; t < nt; t++) y[(size_t)(j0 + t) * ldy + (r - r0)] = (float)hsum(acc[t]);
        }
    }
}

AVX512 static void rows_fp4(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy) {
    (void)x, (void)ldx;
    int cols = W->cols;
    const __m512d t0 = _mm512_loadu_pd((const double[8]){0, 0.5, 1, 1.5, 2, 3, 4, 6});
    const __m512d t1 = _mm512_loadu_pd((const double[8]){-0.0, -0.5, -1, -1.5, -2, -3, -4, -6});
    const __m512i low4 = _mm512_set1_epi64(15);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * (cols / 2);
        const uint8_t *sc = (const uint8_t *)W->scale + (size_t)r * (cols / 32);
        for (int j0 = 0; j0 < n; j0 += TOK) {
            int nt = n - j0 < TOK ? n - j0 : TOK;
            const double *xj = xd + (size_t)j0 * cols;
            __m512d acc[TOK], blk[TOK];
            for (int t = 0; t < TOK; t++) acc[t] = _mm512_setzero_pd();
            for (int b = 0; b < cols; b += 32) {
                for (int t = 0; t < TOK; t++) blk[t] = _mm512_setzero_pd();
                for (int k = b; k < b + 32; k += 16) { /* 8 bytes: even elements in low nibbles */
                    __m512i v = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(w + k / 2)));
                    __m512d we = _mm512_permutex2var_pd(t0, _mm512_and_si512(v, low4), t1);
                    __m512d wo = _mm512_permutex2var_pd(t0, _mm512_srli_epi64(v, 4), t1);
                    for (int t = 0; t < nt; t++) {
                        blk[t] = _mm512_fmadd_pd(we, _mm512_loadu_pd(xj + (size_t)t * cols + k), blk[t]);
                        blk[t] = _mm512_fmadd_pd(wo, _mm512_loadu_pd(xj + (size_t)t * cols + k + 8), blk[t]);
                    }
                }
                __m512d s = _mm512_set1_pd(e8m0_to_f32(sc[b / 32]));
                for (int t = 0; t < nt; t++) acc[t] = _mm512_fmadd_pd(blk[t], s, acc[t]);
            }
            for (int t = 0; t < nt; t++) y[(size_t)(j0 + t) * ldy + (r - r0)] = (float)hsum(acc[t]);
        }
    }
}

AVX512 static void rows_bf16(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy) {
    (void)x, (void)ldx;
    int cols = W->cols;
    if (cols % 16) {
        backend_ref.rows[WK_BF16](W, r0, r1, x, xd, ldx, n, y, ldy);
        return;
    }
    for (int r = r0; r < r1; r++) {
        const uint16_t *w = (const uint16_t *)W->data + (size_t)r * cols;
        for (int j0 = 0; j0 < n; j0 += TOK) {
            int nt = n - j0 < TOK ? n - j0 : TOK;
            __m512d acc[TOK];
            for (int t = 0; t < TOK; t++) acc[t] = _mm512_setzero_pd();
            for (int k = 0; k < cols; k += 16) fma16(decode_bf16(w + k), xd + (size_t)j0 * cols, cols, nt, k, acc);
            for (int t = 0; t < nt; t++) y[(size_t)(j0 + t) * ldy + (r - r0)] = (float)hsum(acc[t]);
        }
    }
}

AVX512 static void rows_f32(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy) {
    int cols = W->cols;
    if (cols % 16) {
        backend_ref.rows[WK_F32](W, r0, r1, x, xd, ldx, n, y, ldy);
        return;
    }
    for (int r = r0; r < r1; r++) {
        const float *w = (const float *)W->data + (size_t)r * cols;
        for (int j0 = 0; j0 < n; j0 += TOK) {
            int nt = n - j0 < TOK ? n - j0 : TOK;
            __m512d acc[TOK];
            for (int t = 0; t < TOK; t++) acc[t] = _mm512_setzero_pd();
            for (int k = 0; k < cols; k += 16) fma16(_mm512_loadu_ps(w + k), xd + (size_t)j0 * cols, cols, nt, k, acc);
            for (int t = 0; t < nt; t++) y[(size_t)(j0 + t) * ldy + (r - r0)] = (float)hsum(acc[t]);
        }
    }
}

const kernel_backend backend_avx512 = {"avx512", {rows_f32, rows_bf16, rows_fp8, rows_fp4}};
