/* The trainer's scalar type. Training code is written over `real`; the
 * gradient-check tests compile the same files with -DV4C_TRAIN_REAL=double
 * (float otherwise), so one source gives float training and double checks. */
#ifndef V4C_TRAIN_REAL_H
#define V4C_TRAIN_REAL_H

#include <cblas.h>
#include <math.h>

#ifndef V4C_TRAIN_REAL
#define V4C_TRAIN_REAL float
#endif
typedef V4C_TRAIN_REAL real;

#define REAL_IS_DOUBLE (sizeof(real) == sizeof(double))

/* C[m,n] = alpha * op(A) op(B) + beta * C, row-major, in the right precision. */
static inline void gemm(int transA, int transB, int m, int n, int k, real alpha, const real *A, int lda, const real *B, int ldb,
                        real beta, real *C, int ldc) {
    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    if (REAL_IS_DOUBLE)
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, (const double *)(const void *)A, lda, (const double *)(const void *)B, ldb, beta,
                    (double *)(void *)C, ldc);
    else
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, (float)alpha, (const float *)(const void *)A, lda, (const float *)(const void *)B, ldb,
                    (float)beta, (float *)(void *)C, ldc);
}

static inline real sigmoid_r(real x) { return 1 / (1 + exp(-x)); }

#endif
