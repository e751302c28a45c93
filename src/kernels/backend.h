/* Kernel backends: one table per instruction set, a row per weight kind
 * (ggml-style). The portable backend is the reference the SIMD ones are
 * tested against; the fastest the CPU supports is chosen at run time. */
#ifndef V4C_BACKEND_H
#define V4C_BACKEND_H

#include "kernels/matrix.h"

/* y[j*ldy + (r - r0)] = W[r] . x_j for r in [r0, r1), j < n.
 * x: [n][ldx] floats. xd: the same values in double, laid out for the
 * kind (see matmul_prepare_input), or NULL for F32/BF16. FP8/FP4 products
 * are accumulated exactly (docs/numerics.md). */
typedef void (*rows_kernel)(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy,
                            double *scratch);

/* Doubles of per-thread scratch a row kernel may use (KERNEL_SCRATCH(cols)). */
#define KERNEL_SCRATCH(cols) ((size_t)4 * (cols) + 8)

typedef struct {
    const char *name;
    rows_kernel rows[WK_COUNT];
} kernel_backend;

extern const kernel_backend backend_ref;
extern const kernel_backend backend_avx512;
extern const kernel_backend backend_avx2;

/* The backend in use: V4C_KERNELS=ref|avx2|avx512 overrides detection. */
const kernel_backend *kernel_backend_active(void);
void kernel_backend_set(const kernel_backend *b);
int cpu_has_avx512(void);
int cpu_has_avx2(void);

/* Double copy of x for FP8/FP4 kernels. FP4 keeps, per 16 columns, the 8
 * even-indexed values then the 8 odd ones (the nibble order of a byte). */
double *matmul_prepare_input(weight_kind kind, const float *x, int ldx, int n, int cols);

#endif
