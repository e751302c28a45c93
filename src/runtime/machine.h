/* The machine's own limits, measured in the same run as a benchmark: read
 * bandwidth (a STREAM-like sum over a buffer much larger than the caches)
 * and FMA peak (independent FMA chains in registers). */
#ifndef V4C_MACHINE_H
#define V4C_MACHINE_H

double machine_read_gbs(int threads);     /* GB/s, best of a few passes (1 and 4 streams a thread) */
double machine_fma_gflops(int threads, int bf16); /* FP32 FMA, or BF16 dot-product (0 if unsupported) */

#endif
