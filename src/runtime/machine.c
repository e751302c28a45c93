#include "runtime/machine.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/backend.h"
#include "util/util.h"
#include "util/workmem.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* A plain read of n bytes as `streams` sequential sub-spans, one line of
 * each per step (1: front to back). Several streams per core read faster
 * on some machines (Zen 5: 4 per core 59-75 GB/s where 1 gives 50-64), and
 * the kernels read that way, so the machine's bandwidth is the best of
 * both. */
AVX512 static uint64_t read_avx512(const uint8_t *p, size_t n, int streams) {
    /* 4 loads a step: 4 adjacent lines (1 stream) or a line of each of 4 sub-spans */
    size_t span = streams == 4 ? n / 4 / 64 * 64 : n / 256 * 256, step = streams == 4 ? 64 : 256, gap = streams == 4 ? span : 64;
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i < span; i += step) {
        a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_load_si512(p + i + gap));
        c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 2 * gap));
        d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 3 * gap));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

static uint64_t read_portable(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) s0 += q[i], s1 += q[i + 1], s2 += q[i + 2], s3 += q[i + 3];
    return s0 + s1 + s2 + s3;
}

volatile uint64_t machine_sink; /* keeps the reads from being optimised away */

double machine_read_gbs(int threads) {
    size_t n = (size_t)1 << 30; /* 1 GiB: far beyond any cache */
    /* In huge pages, like the weights (safetensors.c): with 4 KB pages, TLB
     * misses would set this machine's pace and not the memory's. */
    size_t len;
    uint8_t *buf = huge_map(n, &len);
    if (!buf) return 0;
    int simd = cpu_has_avx512();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i += 4096) memset(buf + i, (int)(i >> 12), 4096);
    double best = 0;
    for (int pass = 0; pass < 6; pass++) { /* alternating 1 and 4 streams a thread */
        double t = omp_get_wtime();
        uint64_t total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            size_t chunk = n / nt / 256 * 256;
            const uint8_t *p = buf + (size_t)id * chunk;
            total += simd ? read_avx512(p, chunk, pass % 2 ? 4 : 1) : read_portable(p, chunk);
        }
        t = omp_get_wtime() - t;
        machine_sink += total;
        if (n / t / 1e9 > best) best = n / t / 1e9;
    }
    munmap(buf, len);
    return best;
}

/* CHAINS independent accumulators hide the latency. The inner loop must be
 * unrolled so they live in registers: through memory, store-to-load
 * forwarding sets the pace and the "peak" comes out 2-2.5x too low. */
enum { CHAINS = 12 };

AVX512 static double fma_loop_avx512(long iters) {
    __m512 acc[CHAINS], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    __m512 s = acc[0];
    _Pragma("GCC unroll 12") for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    machine_sink += (uint64_t)_mm512_reduce_add_ps(s);
    return (double)iters * CHAINS * 16 * 2;
}

AVX512BF16 static double bf16_loop(long iters) {
    __m512 acc[CHAINS];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80), b = (__m512bh)_mm512_set1_epi16(0x3F80);
    /* distinct starting values: identical chains could be merged by the compiler */
    _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __m512 s = acc[0];
    _Pragma("GCC unroll 12") for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    machine_sink += (uint64_t)_mm512_reduce_add_ps(s);
    return (double)iters * CHAINS * 32 * 2;
}

static double fma_loop_portable(long iters) {
    float acc[10][8], x = 1.0000001f, y = 0.9999999f;
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < 8; k++) acc[i][k] = (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 10; i++)
            for (int k = 0; k < 8; k++) acc[i][k] = acc[i][k] * x + y;
    float s = 0;
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < 8; k++) s += acc[i][k];
    machine_sink += (uint64_t)s;
    return (double)iters * 10 * 8 * 2;
}

double machine_fma_gflops(int threads, int bf16) {
    __builtin_cpu_init();
    if (bf16 && !(cpu_has_avx512() && __builtin_cpu_supports("avx512bf16"))) return 0;
    int simd = cpu_has_avx512();
    long iters = 20000000;
    double best = 0;
    for (int pass = 0; pass < 3; pass++) {
        double flops = 0, t = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
        flops += bf16 ? bf16_loop(iters) : simd ? fma_loop_avx512(iters) : fma_loop_portable(iters / 4);
        t = omp_get_wtime() - t;
        if (flops / t / 1e9 > best) best = flops / t / 1e9;
    }
    return best;
}
