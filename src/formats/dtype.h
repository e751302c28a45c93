/* Storage types of the checkpoint formats and the number formats of
 * MODEL.md §2: decoding tables, grid rounding and activation quantization.
 * Adding a storage type means adding a row to the table in dtype.c. */
#ifndef V4C_DTYPE_H
#define V4C_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DT_F64, DT_F32, DT_F16, DT_BF16,
    DT_F8_E4M3, DT_F8_E5M2, DT_F8_E8M0,
    DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_U16, DT_U32, DT_U64, DT_BOOL,
    DT_COUNT
} v4c_dtype;

typedef struct {
    const char *name; /* as spelled in safetensors headers */
    size_t size;      /* bytes per stored element */
} dtype_info;

extern const dtype_info dtype_table[DT_COUNT];

/* -1 if the name is not a known safetensors dtype. */
int dtype_from_name(const char *name);

/* Decoding: e4m3fn (with NaN at 0x7F/0xFF), e2m1 nibble, ue8m0 scale, bf16. */
extern float e4m3_table[256];
extern const float e2m1_table[16];
void dtype_init_tables(void);

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
/* 2^(e-127) built from bits: a normal float for e >= 1, 2^-127 (the
 * subnormal 0x00400000) for e = 0, NaN for 255. */
static inline float e8m0_to_f32(uint8_t e) {
    union { uint32_t u; float f; } v = {e == 255 ? 0x7FC00000u : e ? (uint32_t)e << 23 : 0x00400000u};
    return v.f;
}

/* Round onto a grid: nearest, ties to even, saturating at the max. */
float round_e4m3(float v);
float round_e2m1(float v);
/* Smallest power of two >= x (x > 0, normal), from the float bits. */
float pow2ceil(float x);

/* In-place activation quantization, MODEL.md §2: blocks of `block` values,
 * n must be a multiple of block. */
void fp8_quant(float *v, int n, int block);
void fp8_quant_scalar(float *v, int n, int block); /* the definition the SIMD path is tested against */
void fp4_quant(float *v, int n, int block);

#endif
