/* AVX2 + FMA kernels: the AVX-512 scheme on 256-bit vectors (e2m1 through
 * an 8-entry float table plus the sign bit). Products and sums in double. */
#include <immintrin.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "kernels/backend.h"

#define AVX2 __attribute__((target("avx2,fma")))
enum { TOK = 2 };

AVX2 static inline __m256 decode_e4m3(const uint8_t *p) { /* 8 codes */
    __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    __m256i mag = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x7F)), 20);
    __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x80)), 24);
    return _mm256_mul_ps(_mm256_castsi256_ps(_mm256_or_si256(mag, sign)), _mm256_set1_ps(0x1p120f));
}

AVX2 static inline __m256 decode_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/* 8 nibbles (selected by shift) of 8 packed bytes -> e2m1 floats. */
AVX2 static inline __m256 decode_e2m1(__m256i bytes, int shift) {
    const __m256 mag = _mm256_setr_ps(0, 0.5f, 1, 1.5f, 2, 3, 4, 6);
    __m256i nib = _mm256_and_si256(_mm256_srli_epi32(bytes, shift), _mm256_set1_epi32(15));
    __m256 m = _mm256_permutevar8x32_ps(mag, nib); /* uses the low 3 bits */
    __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(nib, 3), 31);
    return _mm256_or_ps(m, _mm256_castsi256_ps(sign));
}

AVX2 static inline double hsum(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

AVX2 static inline void fma8(__m256 w, const double *xd, size_t ldxd, int nt, int k, __m256d *acc) {
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(w)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1));
    _Pragma("GCC unroll 4")
    for (int t = 0; t < nt; t++) {
        acc[t] = _mm256_fmadd_pd(lo, _mm256_loadu_pd(xd + t * ldxd + k), acc[t]);
        acc[t] = _mm256_fmadd_pd(hi, _mm256_loadu_pd(xd + t * ldxd + k + 4), acc[t]);
    }
}

AVX2 static void rows_fp8(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch) {
    (void)x, (void)ldx, (void)scratch;
    int cols = W->cols;
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * cols;
        for (int j0 = 0; j0 < n; j0 += TOK) {
            int nt = n - j0 < TOK ? n - j0 : TOK;
            const double *xj = xd + (size_t)j0 * cols;
            __m256d acc[TOK] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, blk[TOK];
            for (int b = 0; b < cols; b += 128) {
                blk[0] = blk[1] = _mm256_setzero_pd();
                for (int k = b; k < b + 128; k += 8) fma8(decode_e4m3(w + k), xj, cols, nt, k, blk);
                __m256d s = _mm256_set1_pd(fp8_block_scale(W, r, b / 128));
                _Pragma("GCC unroll 4")
                for (int t = 0; t < nt; t++) acc[t] = _mm256_fmadd_pd(blk[t], s, acc[t]);
            }
            _Pragma("GCC unroll 4")
            for (int t = 0; t < nt; t++) y[(size_t)(j0 + t) * ldy + (r - r0)] = (float)hsum(acc[t]);
        }
    }
}

AVX2 static void rows_fp4(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch) {
    (void)x, (void)ldx, (void)scratch;
    int cols = W->cols;
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * (cols / 2);
        const uint8_t *sc = (const uint8_t *)W->scale + (size_t)r * (cols / 32);
        for (int j0 = 0; j0 < n; j0 += TOK) {
            int nt = n - j0 < TOK ? n - j0 : TOK;
            const double *xj = xd + (size_t)j0 * cols;
            __m256d acc[TOK] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, blk[TOK];
            for (int b = 0; b < cols; b += 32) {
                blk[0] = blk[1] = _mm256_setzero_pd();
                for (int k = b; k < b + 32; k += 16) { /* xd holds 8 even then 8 odd columns */
                    __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(w + k / 2)));
                    fma8(decode_e2m1(bytes, 0), xj, cols, nt, k, blk);
                    fma8(decode_e2m1(bytes, 4), xj, cols, nt, k + 8, blk);
                }
                __m256d s = _mm256_set1_pd(e8m0_to_f32(sc[b / 32]));
                _Pragma("GCC unroll 4")
                for (int t = 0; t < nt; t++) acc[t] = _mm256_fmadd_pd(blk[t], s, acc[t]);
            }
            _Pragma("GCC unroll 4")
            for (int t = 0; t < nt; t++) y[(size_t)(j0 + t) * ldy + (r - r0)] = (float)hsum(acc[t]);
        }
    }
}

/* F32 and BF16 rows: no block scales; bf16 widens by a shift. */
AVX2 static void rows_plain(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch) {
    int cols = W->cols, bf16 = W->kind == WK_BF16;
    if (cols % 8) {
        backend_ref.rows[W->kind](W, r0, r1, x, xd, ldx, n, y, ldy, scratch);
        return;
    }
    for (int r = r0; r < r1; r++) {
        const char *w = (const char *)W->data + (size_t)r * cols * (bf16 ? 2 : 4);
        for (int j0 = 0; j0 < n; j0 += TOK) {
            int nt = n - j0 < TOK ? n - j0 : TOK;
            __m256d acc[TOK] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
            for (int k = 0; k < cols; k += 8)
                fma8(bf16 ? decode_bf16((const uint16_t *)w + k) : _mm256_loadu_ps((const float *)w + k), xd + (size_t)j0 * cols, cols, nt, k, acc);
            _Pragma("GCC unroll 4")
            for (int t = 0; t < nt; t++) y[(size_t)(j0 + t) * ldy + (r - r0)] = (float)hsum(acc[t]);
        }
    }
}

const kernel_backend backend_avx2 = {"avx2", {rows_plain, rows_plain, rows_fp8, rows_fp4}, NULL, NULL, NULL, 0};
