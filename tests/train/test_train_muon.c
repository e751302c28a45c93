/* Muon's hybrid Newton-Schulz (TRAINING.md): after the 8 fast steps the
 * singular values of a normalised random matrix lie in ~[0.68, 1.13]; the 2
 * slow steps bring them to ~[1.0000, 1.0005]. Singular values come from a
 * Jacobi eigen-decomposition of the Gram matrix, in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "train/optim.h"

/* Eigenvalues of the symmetric n x n matrix A (destroyed) into ev. */
static void jacobi_eigenvalues(double *A, int n, double *ev) {
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) off += A[p * n + q] * A[p * n + q];
        if (off < 1e-30) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                if (fabs(A[p * n + q]) < 1e-300) continue;
                double theta = (A[q * n + q] - A[p * n + p]) / (2 * A[p * n + q]);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1)), c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* rotate columns p, q then rows p, q */
                    double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
            }
    }
    for (int i = 0; i < n; i++) ev[i] = A[i * n + i];
}

/* min and max singular value of X [rows, cols], rows >= cols. */
static void sv_range(const real *X, int rows, int cols, double *lo, double *hi) {
    double *A = calloc((size_t)cols * cols, sizeof(double)), *ev = malloc((size_t)cols * sizeof(double));
    for (int i = 0; i < cols; i++)
        for (int j = 0; j < cols; j++)
            for (int k = 0; k < rows; k++) A[i * cols + j] += (double)X[(size_t)k * cols + i] * X[(size_t)k * cols + j];
    jacobi_eigenvalues(A, cols, ev);
    *lo = 1e30;
    *hi = 0;
    for (int i = 0; i < cols; i++) {
        double s = sqrt(fmax(ev[i], 0));
        *lo = fmin(*lo, s);
        *hi = fmax(*hi, s);
    }
    free(ev);
    free(A);
}

static int run(int rows, int cols, unsigned seed) {
    real *X = malloc((size_t)rows * cols * sizeof(real)), *Y = malloc((size_t)rows * cols * sizeof(real));
    srand(seed);
    double fro = 0;
    for (int i = 0; i < rows * cols; i++) {
        double u1 = (rand() + 1.0) / (RAND_MAX + 2.0), u2 = rand() / (RAND_MAX + 1.0);
        X[i] = (real)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
        fro += (double)X[i] * X[i];
    }
    for (int i = 0; i < rows * cols; i++) Y[i] = X[i] = (real)(X[i] / sqrt(fro));
    double lo8, hi8, lo10, hi10;
    newton_schulz(X, rows, cols, 8, 0);
    int tall = rows >= cols;
    /* singular values of a wide matrix: those of its transpose */
    real *T = malloc((size_t)rows * cols * sizeof(real));
    for (int pass = 0; pass < 2; pass++) {
        const real *S = X;
        if (!tall) {
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) T[(size_t)j * rows + i] = X[(size_t)i * cols + j];
            S = T;
        }
        if (pass == 0) sv_range(S, tall ? rows : cols, tall ? cols : rows, &lo8, &hi8);
        else sv_range(S, tall ? rows : cols, tall ? cols : rows, &lo10, &hi10);
        if (pass == 0) {
            for (int i = 0; i < rows * cols; i++) X[i] = Y[i];
            newton_schulz(X, rows, cols, 8, 2);
        }
    }
    int ok = lo8 >= 0.68 - 0.02 && hi8 <= 1.13 + 0.02 && lo10 >= 0.999 && hi10 <= 1.0006;
    printf("%dx%d: after 8 fast steps sv in [%.4f, %.4f]; after 10 in [%.6f, %.6f] -> %s\n", rows, cols, lo8, hi8, lo10, hi10, ok ? "OK" : "FAIL");
    free(T);
    free(Y);
    free(X);
    return !ok;
}

int main(void) {
    int fails = run(96, 48, 1) + run(40, 120, 2) + run(64, 64, 3);
    return fails != 0;
}
