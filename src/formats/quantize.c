#include "formats/quantize.h"

#include <math.h>

#include "formats/dtype.h"

uint8_t e4m3_encode(float v) {
    dtype_init_tables();
    float r = round_e4m3(v), a = fabsf(r);
    /* Positive codes 0x00..0x7E increase monotonically: binary search. */
    int lo = 0, hi = 0x7E;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (e4m3_table[mid] < a) lo = mid + 1;
        else hi = mid;
    }
    return (uint8_t)(lo | (signbit(r) && a > 0 ? 0x80 : 0));
}

uint8_t e2m1_encode(float v) {
    float r = round_e2m1(v), a = fabsf(r);
    int c = 0;
    while (c < 7 && e2m1_table[c] < a) c++;
    return (uint8_t)(c | (signbit(r) && a > 0 ? 8 : 0));
}

uint8_t e8m0_encode_pow2(float s) {
    int e;
    frexpf(s, &e); /* s = 0.5 * 2^e */
    int code = e - 1 + 127;
    return (uint8_t)(code < 0 ? 0 : code > 254 ? 254 : code);
}

void quantize_fp8_matrix(const float *w, int rows, int cols, uint8_t *codes, uint8_t *scales) {
    int sc = (cols + 127) / 128;
    for (int rb = 0; rb < rows; rb += 128)
        for (int cb = 0; cb < cols; cb += 128) {
            int r1 = rb + 128 < rows ? rb + 128 : rows, c1 = cb + 128 < cols ? cb + 128 : cols;
            float amax = 1e-30f;
            for (int r = rb; r < r1; r++)
                for (int c = cb; c < c1; c++) amax = fmaxf(amax, fabsf(w[(size_t)r * cols + c]));
            float s = pow2ceil(amax / 448.0f);
            scales[(rb / 128) * sc + cb / 128] = e8m0_encode_pow2(s);
            for (int r = rb; r < r1; r++)
                for (int c = cb; c < c1; c++) codes[(size_t)r * cols + c] = e4m3_encode(w[(size_t)r * cols + c] / s);
        }
}

void quantize_fp4_matrix(const float *w, int rows, int cols, uint8_t *packed, uint8_t *scales) {
    for (int r = 0; r < rows; r++)
        for (int cb = 0; cb < cols; cb += 32) {
            const float *x = w + (size_t)r * cols + cb;
            float amax = 1e-30f;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
            float s = pow2ceil(amax / 6.0f);
            scales[(size_t)r * (cols / 32) + cb / 32] = e8m0_encode_pow2(s);
            for (int i = 0; i < 32; i += 2)
                packed[((size_t)r * cols + cb + i) / 2] = (uint8_t)(e2m1_encode(x[i] / s) | e2m1_encode(x[i + 1] / s) << 4);
        }
}
