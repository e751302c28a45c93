/* Portable kernels: decode a weight row, then correctly rounded dot
 * products (double accumulation) with each input. The reference the SIMD
 * backends are tested against. */
#include <stdlib.h>

#include "kernels/backend.h"
#include "util/util.h"

static void rows_ref(const v4c_matrix *W, int r0, int r1, const float *x, const double *xd, int ldx, int n, float *y, int ldy, double *scratch) {
    (void)xd, (void)scratch;
    int cols = W->cols;
    float *w = xmalloc((size_t)cols * sizeof(float));
    for (int r = r0; r < r1; r++) {
        matrix_row_f32(W, r, w);
        for (int j = 0; j < n; j++) {
            const float *xj = x + (size_t)j * ldx;
            double acc[4] = {0};
            int i = 0;
            for (; i + 4 <= cols; i += 4)
                for (int k = 0; k < 4; k++) acc[k] += (double)w[i + k] * xj[i + k];
            for (; i < cols; i++) acc[0] += (double)w[i] * xj[i];
            y[(size_t)j * ldy + (r - r0)] = (float)((acc[0] + acc[1]) + (acc[2] + acc[3]));
        }
    }
    free(w);
}

const kernel_backend backend_ref = {"portable", {rows_ref, rows_ref, rows_ref, rows_ref}, NULL, NULL, NULL, 0};
