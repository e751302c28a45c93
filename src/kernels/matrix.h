/* A weight matrix in its stored form and the products with it. Each storage
 * kind is a row of the table in matrix.c (how to decode one row). */
#ifndef V4C_MATRIX_H
#define V4C_MATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

typedef enum { WK_F32, WK_BF16, WK_FP8, WK_FP4, WK_COUNT } weight_kind;

/* What a matrix is for, so time and bytes can be reported by operation. */
typedef enum { OP_ATTN, OP_EXPERT, OP_SHARED, OP_HEAD, OP_OTHER, OP_COUNT } op_class;
extern const char *const op_class_name[OP_COUNT];

typedef struct {
    weight_kind kind;
    op_class op;
    int rows, cols;     /* logical [out, in] */
    const void *data;   /* F32/BF16 values, e4m3 codes, or packed e2m1 pairs */
    const void *scale;  /* FP8: [ceil(rows/128), ceil(cols/128)]; FP4: [rows, cols/32] */
    int scale_is_f32;   /* Base checkpoints store FP8 scales as F32, not E8M0 */
    int panels;         /* 0, rows one after another; PANEL_ROWS, packed in panels (below) */
    int scales_ok;      /* packed FP8/FP4: every scale within 2^+-SCALE_EXP_LIMIT, found when packing (else checked per call) */
} v4c_matrix;

/* Panels: F32/BF16 rows in groups of PANEL_ROWS, each group stored column
 * by column, so that a 64-byte vector holds one column of 16 rows (F32) or
 * two adjacent columns of 16 rows (BF16: row i's columns 2j and 2j+1 in
 * 32-bit lane i). A kernel then keeps rows in vector lanes and broadcasts
 * the inputs: every weight vector serves all tokens of a batch, one long
 * sequential stream per panel (the head at 8 tokens; docs/performance.md).
 * Element (r, c) of a BF16 matrix lies at (r / 16) * 16 * cols + (c / 2) *
 * 32 + (r % 16) * 2 + c % 2, of an F32 one at (r / 16) * 16 * cols + c *
 * 16 + r % 16. FP8/FP4 panels (matrix_pack_in_place) hold 4 or 8 columns
 * of the 16 rows in each 64-byte line, in the order their decoders unpack
 * (matrix.c, panel_index). */
enum { PANEL_ROWS = 16 };

/* |log2| of the FP8/FP4 scales the dot kernels carry exactly (products
 * stay far from the float range ends); rows or blocks beyond go exact. */
enum { SCALE_EXP_LIMIT = 40 };

/* Whether W (row-major) can be packed: rows a multiple of PANEL_ROWS;
 * F32/BF16 with columns of 16, FP8/FP4 (E8M0 scales) with columns of 128. */
int matrix_packable(const v4c_matrix *W);
/* W's rows packed into dst (matrix_bytes(W, W->rows) bytes, not W's own
 * data), which W then uses. */
void matrix_pack_panels(v4c_matrix *W, void *dst);
/* An FP8/FP4 W packed in panels where it lies, its FP4 scales [rows][cols
 * / 32] as [panel][cols / 32][16]: data and scales must be writable and W's
 * own. FP8 lines hold 4 columns of a panel's 16 rows, FP4 lines 8, placed
 * as the dot kernels' decoders unpack them (matrix.c). */
void matrix_pack_in_place(v4c_matrix *W);
/* Whether every e8m0 scale of FP8/FP4 W is within 2^+-SCALE_EXP_LIMIT (the
 * order of the scales does not matter: packed or not). */
int matrix_scales_in_range(const v4c_matrix *W);
/* 1 (default): matrix_pack_in_place moves the codes with AVX-512 where the
 * CPU has the dot kernels' instructions; 0: the portable loop (tests). */
extern int matrix_pack_simd;

extern const char *const weight_kind_name[WK_COUNT];

/* FP8/FP4 weights consume fp8_quant(x, 128) of their input (MODEL.md §2). */
static inline int matrix_quantizes_input(const v4c_matrix *W) { return W->kind == WK_FP8 || W->kind == WK_FP4; }

/* Scale of FP8 block (row r, column block cb). */
static inline float fp8_block_scale(const v4c_matrix *W, int r, int cb) {
    size_t i = (size_t)(r / 128) * ((W->cols + 127) / 128) + cb;
    return W->scale_is_f32 ? ((const float *)W->scale)[i] : e8m0_to_f32(((const uint8_t *)W->scale)[i]);
}

/* Decode row r (all cols) into out. */
void matrix_row_f32(const v4c_matrix *W, int r, float *out);

/* y[j*ldy + i] = W[row0 + i] . x[j*ldx ...], i < nrows, j < n. No input
 * quantization: the raw product with the dequantized weight. */
void matmul(float *y, int ldy, const v4c_matrix *W, int row0, int nrows, const float *x, int ldx, int n);

/* Per-operation totals of matmul calls (calling thread's view). */
typedef struct {
    double seconds[OP_COUNT], flops[OP_COUNT], bytes[OP_COUNT];
    double dot_flops[OP_COUNT]; /* the part done by BF16 dot products (the rest: float or double FMA) */
} matmul_profile;
extern matmul_profile matmul_prof;
/* Up to STREAM_TOKENS tokens through the backend's stream kernel (1, the
 * default) or the batch kernels (0): V4C_STREAMS=0|1, or set directly by benchmarks. */
extern int matmul_streams;
void matmul_profile_reset(void);

/* Bytes of stored weight data in rows [r0, r1) (scales included). */
double matrix_bytes(const v4c_matrix *W, int nrows);

/* The linear layer of MODEL.md: y[n, rows] = W x for n rows of x[n, cols],
 * applying fp8_quant(x, 128) first when W is FP8/FP4. */
void linear(float *y, const v4c_matrix *W, const float *x, int n);

/* Several matmul()s: y[t * ldy + i] = W[row0 + i] . x[t * ldx ...] for
 * i < nrows, t < n, x quantized first as linear() does when `quantize`
 * (then ldx must be W->cols; nrows 0: all of W's rows; ldx 0: W->cols;
 * ldy 0: nrows). Those the
 * backend streams (a few tokens) share one parallel region, their rows cut
 * into shares that threads take as they come free (a MoE layer's experts,
 * wo_a's groups); the others run one after another. Same results as
 * matmul() and linear() one by one. */
typedef struct {
    float *y;
    int ldy;
    const v4c_matrix *W;
    int row0, nrows;
    const float *x;
    int ldx, n, quantize;
} matmul_job;
void matmul_many(const matmul_job *jobs, int count);

/* x quantized as W's input needs it: x itself, or a copy in *owned
 * (work_free it; NULL when x itself is returned). */
const float *linear_input(const v4c_matrix *W, const float *x, int n, float **owned);

#endif
