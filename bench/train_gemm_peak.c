/* Measured float32 FMA throughput of this machine (OpenBLAS sgemm, one
 * thread): the peak that BENCHMARKS.md's training MFU is taken against.
 * cc -O2 bench/train_gemm_peak.c $(pkg-config --cflags --libs openblas) -o /tmp/peak */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(void) {
    int n = 1024, reps = 5;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = 1.0f / (1 + i % 7);
    struct timespec t0, t1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("sgemm %dx%dx%d: %.1f GFLOP/s per thread\n", n, n, n, 2.0 * n * n * n * reps / s / 1e9);
    free(a);
    free(b);
    free(c);
    return 0;
}
