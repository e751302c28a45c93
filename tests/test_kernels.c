/* Every SIMD backend the CPU supports against the portable kernels, for
 * each weight kind, several input counts (1..9: the 4-input passes and
 * their tails) and row ranges. Sums are exact up to double rounding, so
 * results must agree to within one float ulp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "formats/quantize.h"
#include "kernels/backend.h"
#include "test_util.h"

static unsigned seed = 1;
static float frand(void) {
    seed = seed * 1664525u + 1013904223u;
    return ((seed >> 8) / 16777216.0f) * 2 - 1;
}

typedef struct {
    v4c_matrix W;
    void *data, *scale;
} owned_matrix;

static owned_matrix make(weight_kind kind, int rows, int cols) {
    owned_matrix m = {.W = {.kind = kind, .rows = rows, .cols = cols}};
    float *w = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) w[i] = frand() * (i % 13 == 0 ? 8.0f : 0.05f); /* wide dynamic range */
    switch (kind) {
    case WK_F32:
        m.data = w;
        w = NULL;
        break;
    case WK_BF16: {
        uint16_t *b = malloc(2 * (size_t)rows * cols);
        for (int i = 0; i < rows * cols; i++) {
            union { float f; uint32_t u; } v = {w[i]};
            b[i] = (uint16_t)(v.u >> 16);
        }
        m.data = b;
        break;
    }
    case WK_FP8:
        m.data = malloc((size_t)rows * cols);
        m.scale = malloc((size_t)((rows + 127) / 128) * ((cols + 127) / 128));
        quantize_fp8_matrix(w, rows, cols, m.data, m.scale);
        break;
    case WK_FP4:
        m.data = malloc((size_t)rows * cols / 2);
        m.scale = malloc((size_t)rows * cols / 32);
        quantize_fp4_matrix(w, rows, cols, m.data, m.scale);
        break;
    default:
        break;
    }
    free(w);
    m.W.data = m.data;
    m.W.scale = m.scale;
    return m;
}

static void check_backend(const kernel_backend *be) {
    const int rows = 40, cols = 384;
    for (int kind = 0; kind < WK_COUNT; kind++) {
        owned_matrix m = make(kind, rows, cols);
        for (int n = 1; n <= 9; n += 2) {
            float *x = malloc(sizeof(float) * n * cols);
            for (int i = 0; i < n * cols; i++) x[i] = frand();
            if (kind == WK_FP8 || kind == WK_FP4)
                for (int j = 0; j < n; j++) fp8_quant(x + j * cols, cols, 128);
            float *want = calloc((size_t)n * rows, sizeof(float)), *got = calloc((size_t)n * rows, sizeof(float));
            double *xd = matmul_prepare_input(kind, x, cols, n, cols);
            double *scratch = aligned_alloc(64, ((KERNEL_SCRATCH(cols) * sizeof(double)) + 63) / 64 * 64);
            backend_ref.rows[kind](&m.W, 3, rows, x, xd, cols, n, want, rows, scratch);
            be->rows[kind](&m.W, 3, rows, x, xd, cols, n, got, rows, scratch);
            free(scratch);
            int bad = 0;
            for (int i = 0; i < n * rows; i++) {
                if (i % rows >= rows - 3) continue; /* rows 3..rows-1 land in the first rows-3 slots */
                float tol = 1.2e-7f * fabsf(want[i]) + 1e-30f;
                if (!(fabsf(got[i] - want[i]) <= tol)) bad++;
            }
            CHECK(bad == 0, "%s, %s, n=%d: %d of %d outputs differ from the portable kernel", be->name, weight_kind_name[kind], n, bad,
                  n * (rows - 3));
            free(xd), free(want), free(got), free(x);
        }
        free(m.data), free(m.scale);
    }
}

/* The portable kernel itself against a direct double-precision sum of the
 * decoded weights: correctly rounded. */
static void check_reference(void) {
    for (int kind = 0; kind < WK_COUNT; kind++) {
        owned_matrix m = make(kind, 8, 256);
        float x[256], y[8], row[256];
        for (int i = 0; i < 256; i++) x[i] = frand();
        double *xd = matmul_prepare_input(kind, x, 256, 1, 256);
        backend_ref.rows[kind](&m.W, 0, 8, x, xd, 256, 1, y, 8, NULL);
        for (int r = 0; r < 8; r++) {
            matrix_row_f32(&m.W, r, row);
            double s = 0;
            for (int i = 0; i < 256; i++) s += (double)row[i] * x[i];
            CHECK(y[r] == (float)s, "portable %s row %d: %.9g vs %.9g", weight_kind_name[kind], r, y[r], (float)s);
        }
        free(xd), free(m.data), free(m.scale);
    }
}

int main(void) {
    dtype_init_tables();
    check_reference();
    if (cpu_has_avx2()) check_backend(&backend_avx2);
    else printf("no AVX2 on this CPU: skipped\n");
    if (cpu_has_avx512()) check_backend(&backend_avx512);
    else printf("no AVX-512 on this CPU: skipped\n");
    return test_done("test_kernels");
}
