#include "formats/dtype.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

const dtype_info dtype_table[DT_COUNT] = {
    [DT_F64] = {"F64", 8},         [DT_F32] = {"F32", 4},
    [DT_F16] = {"F16", 2},         [DT_BF16] = {"BF16", 2},
    [DT_F8_E4M3] = {"F8_E4M3", 1}, [DT_F8_E5M2] = {"F8_E5M2", 1},
    [DT_F8_E8M0] = {"F8_E8M0", 1}, [DT_I64] = {"I64", 8},
    [DT_I32] = {"I32", 4},         [DT_I16] = {"I16", 2},
    [DT_I8] = {"I8", 1},           [DT_U8] = {"U8", 1},
    [DT_U16] = {"U16", 2},         [DT_U32] = {"U32", 4},
    [DT_U64] = {"U64", 8},         [DT_BOOL] = {"BOOL", 1},
};

int dtype_from_name(const char *name) {
    for (int i = 0; i < DT_COUNT; i++)
        if (!strcmp(dtype_table[i].name, name)) return i;
    return -1;
}

float e4m3_table[256];
const float e2m1_table[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                              -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

static float e4m3_decode(uint8_t c) {
    int e = (c >> 3) & 15, m = c & 7;
    float mag;
    if (e == 15 && m == 7) return NAN;
    if (e == 0) mag = ldexpf((float)m, -9);
    else mag = ldexpf(1.0f + m / 8.0f, e - 7);
    return (c & 0x80) ? -mag : mag;
}

void dtype_init_tables(void) {
    static int ready; /* idempotent; concurrent first calls write equal values */
    if (ready) return;
    for (int c = 0; c < 256; c++) e4m3_table[c] = e4m3_decode((uint8_t)c);
    ready = 1;
}


/* Both grids: `mant_bits` mantissa bits, smallest normal 2^min_exp. Within a
 * binade the grid step is a power of two, so |v|/step is exact and rintf
 * (round-half-even in the default mode) gives the tie-to-even rounding. */
static float round_grid(float v, int mant_bits, int min_exp, float max) {
    float a = fabsf(v);
    if (!(a <= max)) a = max; /* saturate; also maps NaN to max */
    int e;
    frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    int exp = e - 1;
    if (a == 0.0f || exp < min_exp) exp = min_exp;
    float step = ldexpf(1.0f, exp - mant_bits);
    float r = rintf(a / step) * step;
    if (r > max) r = max;
    return copysignf(r, v);
}

float round_e4m3(float v) { return round_grid(v, 3, -6, 448.0f); }
float round_e2m1(float v) { return round_grid(v, 1, 0, 6.0f); }

float pow2ceil(float x) {
    union { float f; uint32_t u; } v = {x};
    if ((v.u & 0x7FFFFF) == 0) return x;
    v.u = (v.u & 0xFF800000u) + 0x00800000u; /* exponent + 1, mantissa 0 */
    return v.f;
}

static void quant_blocks(float *v, int n, int block, float amax_floor, float qmax, int fp8) {
    for (int b = 0; b < n; b += block) {
        float amax = amax_floor;
        for (int i = 0; i < block; i++) amax = fmaxf(amax, fabsf(v[b + i]));
        /* MODEL.md §2: fp8 uses amax * (1/448), fp4 uses amax / 6. */
        float s = pow2ceil(fp8 ? amax * (1.0f / 448.0f) : amax / 6.0f);
        for (int i = 0; i < block; i++) {
            float q = fminf(fmaxf(v[b + i] / s, -qmax), qmax);
            v[b + i] = (fp8 ? round_e4m3(q) : round_e2m1(q)) * s;
        }
    }
}

/* fp8_quant on 16 lanes, bit for bit the scalar definition: e4m3
 * round-to-nearest-even is the float32 mantissa rounded at bit 20 for
 * normal values, and a snap to the 2^-9 grid by adding and removing 2^14
 * for subnormal ones. */
#define AVX512 __attribute__((target("avx512f,avx512dq")))
AVX512 static void fp8_quant_avx512(float *v, int n, int block) {
    const __m512 qmax = _mm512_set1_ps(448.0f), qmin = _mm512_set1_ps(-448.0f), grid = _mm512_set1_ps(16384.0f);
    const __m512 tiny = _mm512_set1_ps(0x1p-6f);
    const __m512i half = _mm512_set1_epi32(0x7FFFF), keep = _mm512_set1_epi32((int)0xFFF00000u), one = _mm512_set1_epi32(1);
    for (int b = 0; b < n; b += block) {
        __m512 mx = _mm512_set1_ps(1e-4f);
        for (int i = 0; i < block; i += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(v + b + i)));
        float s = pow2ceil(_mm512_reduce_max_ps(mx) * (1.0f / 448.0f));
        __m512 sv = _mm512_set1_ps(s);
        for (int i = 0; i < block; i += 16) {
            __m512 x = _mm512_loadu_ps(v + b + i);
            __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x, sv), qmin), qmax); /* max_ps(NaN, m) = m, as fmaxf */
            __m512 a = _mm512_abs_ps(q);
            __m512i u = _mm512_castps_si512(a);
            u = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(u, 20), one))), keep);
            __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, tiny, _CMP_LT_OQ), _mm512_castsi512_ps(u),
                                            _mm512_sub_ps(_mm512_add_ps(a, grid), grid));
            r = _mm512_or_ps(r, _mm512_and_ps(q, _mm512_set1_ps(-0.0f))); /* q's sign */
            _mm512_storeu_ps(v + b + i, _mm512_mul_ps(r, sv));
        }
    }
}

void fp8_quant_scalar(float *v, int n, int block) { quant_blocks(v, n, block, 1e-4f, 448.0f, 1); }

void fp8_quant(float *v, int n, int block) {
    int simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    if (simd && block % 16 == 0 && n % block == 0) fp8_quant_avx512(v, n, block);
    else quant_blocks(v, n, block, 1e-4f, 448.0f, 1);
}
void fp4_quant(float *v, int n, int block) { quant_blocks(v, n, block, 6.0f * 0x1p-126f, 6.0f, 0); }
