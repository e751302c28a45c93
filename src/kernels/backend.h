/* Kernel backends: one table per instruction set, a row per weight kind
 * (ggml-style). The portable backend is the reference the SIMD ones are
 * tested against; the fastest the CPU supports is chosen at run time. */
#ifndef V4C_BACKEND_H
#define V4C_BACKEND_H

#include "kernels/matrix.h"

/* y[j*ldy + (r - r0)] = W[r] . x_j for r in [r0, r1), j < n.
 * x: [n][ldx] floats. xd: the same values in double, laid out for the
 * kind (see matmul_prepare_input), for the exact kernels; NULL for the
 * fast backend's own rows. */
typedef void (*rows_kernel)(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy,
                            double *scratch);

/* Doubles of per-thread scratch a row kernel may use (KERNEL_SCRATCH(cols)):
 * the fast float kernels keep a 16-row float panel there. */
#define KERNEL_SCRATCH(cols) ((size_t)8 * (cols) + 64)

/* The BF16 dot-product path for FP8/FP4 weights (gemv_avx512_fast.c): x
 * converted once per call by dot_prepare into the kernels' column order. */
typedef struct {
    const float *x;
    int ldx, n;
    const uint16_t *xb; /* quantized input as bf16 (dot_prepare), or */
    const float *xf;    /* FP8 only: a float input reordered by float_prepare */
    int xf_scalable;    /* float_prepare's answer: xf times any scale is exact */
} dot_input;
typedef void (*dot_kernel)(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch);
enum { DOT_TOKENS = 6, STREAM_TOKENS = 8 }; /* tokens per register tile (matmul slices inputs in multiples of it); most tokens a stream kernel takes */
/* Bytes of per-thread scratch dot_rows needs for a span of rows: a bf16
 * panel, an exact row, and the double sums of a column-blocked panel. */
#define DOT_SCRATCH(rows, cols) (((size_t)(rows) + 12) * (cols) * 2 + (size_t)(cols) * 4 + 64 + ((size_t)(rows) + 4) * DOT_TOKENS * 64)

typedef struct kernel_backend_s {
    const char *name;
    rows_kernel rows[WK_COUNT];
    dot_kernel dot; /* FP8/FP4 through bf16 dot products, or NULL */
    /* The rows read as a few long streams, for up to STREAM_TOKENS tokens
     * of FP8/FP4 with xb, FP8 with xf, or F32/BF16 with x (as matmul
     * prepared them); NULL: rows/dot as for a batch. */
    void (*stream)(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch);
    const struct kernel_backend_s *exact; /* rows a NULL entry above falls back to */
    int panels; /* its rows, dot and stream take panel-packed matrices (matrix.h), and packing pays: the
                   model packs its head, and its FP8/FP4 weights when held in memory, when the active backend
                   says so. Others get such matrices through backend_ref's rows (exact, decoding through
                   matrix_row_f32). */
} kernel_backend;

extern const kernel_backend backend_ref;
extern const kernel_backend backend_avx512;
extern const kernel_backend backend_avx2;
extern const kernel_backend backend_avx512_fast;

int dot_supported(void); /* AVX-512 with BF16 and VBMI */
/* x as bf16 in the kernels' order, into xb ([n][cols]);
 * 0 when x is not exactly representable (the exact kernels then run). */
int dot_prepare(weight_kind kind, const float *x, int ldx, int n, int cols, uint16_t *xb);
int float_prepare(const float *x, int ldx, int n, int cols, float *xf);
/* The same for FP8/FP4 packed in panels: x as bf16 in column order. */
int dot_prepare_pairs(const float *x, int ldx, int n, int cols, uint16_t *xb);
void dot_rows(const v4c_matrix *W, int r0, int r1, const dot_input *in, float *y, int ldy, void *scratch);
/* The codes of one FP8/FP4 panel (16 rows of row_bytes) packed where they
 * lie, as matrix_pack_in_place's portable loop does (dot_supported CPUs;
 * tmp: 16 * row_bytes bytes). */
void dot_pack_panel(uint8_t *panel, size_t row_bytes, int fp4, uint8_t *tmp);

/* The backend in use: V4C_KERNELS=ref|avx2|avx512-exact|avx512 overrides
 * detection (avx512 needs BF16 and VBMI). */
const kernel_backend *kernel_backend_active(void);
void kernel_backend_set(const kernel_backend *b);
int cpu_has_avx512(void);
int cpu_has_avx2(void);

/* Double copy of x for FP8/FP4 kernels. FP4 keeps, per 16 columns, the 8
 * even-indexed values then the 8 odd ones (the nibble order of a byte). */
double *matmul_prepare_input(weight_kind kind, const float *x, int ldx, int n, int cols);

#endif
