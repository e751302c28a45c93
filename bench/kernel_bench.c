/* GEMV throughput of the active kernels at one token, by weight kind, with
 * the weights in cache (compute-bound: what a core can decode) and in
 * memory (what decode gets), and GEMM GFLOP/s at prefill-like token
 * counts (attention's wo_a: FP8 with a float input). Random weights with scales near 1.
 * build: see bench/kernel_bench.sh; OMP_NUM_THREADS sets the threads;
 * `kernel_bench gemm` runs the GEMMs only, `kernel_bench gemv` the GEMVs,
 * `kernel_bench streams` the streams against the batch kernels,
 * `kernel_bench decode` decode's products on Flash's shapes from memory,
 * `kernel_bench tokens [KIND [N]]` GFLOP/s at 1-8 tokens in L2 and from memory
 * (KIND: only BF16, FP8 or FP4 weights; N: only N tokens. FP4 at 8 tokens
 * after the runs of 1-4 tokens in the same process measured 2-6x slower
 * than alone, for both layouts: compare such numbers run alone); `decode panels` and the "(panels)"
 * rows of `tokens`: FP8/FP4 packed in panels, as the model loads them. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/matrix.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *huge_alloc(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) exit(1);
    madvise(p, n, MADV_HUGEPAGE);
    return p;
}

/* `copies` matrices of rows x cols of kind k, read in turn; best of reps.
 * With ab, reps alternate the batch kernels and the streams (matmul_streams
 * 0 and 1) and the means of both are printed; with flops, GFLOP/s and GB/s
 * whatever the token count. */
static int pack_quantized; /* `decode panels` */

static void run_ab(weight_kind k, int rows, int cols, int copies, int reps, const char *where, int n, int ab, int flops) {
    int raw = !strncmp(where, "float", 5); /* FP8 with a float input (wo_a): matmul, no quantization */
    int panels = strstr(where, "panels") != NULL; /* packed in panels, as the model packs its head and FP8/FP4 weights */
    size_t data = k == WK_FP4 ? (size_t)rows * cols / 2 : k == WK_FP8 ? (size_t)rows * cols : (size_t)rows * cols * 2;
    size_t scales = k == WK_FP4 ? (size_t)rows * cols / 32 : k == WK_FP8 ? (size_t)(rows / 128) * (cols / 128) : 0;
    uint8_t *mem = huge_alloc((data + scales) * copies + 64);
    uint64_t st = 0x9E3779B97F4A7C15u; /* xorshift: rand() would take longer than the runs */
    for (size_t i = 0; i < (data + scales) * copies; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        mem[i] = (uint8_t)(st >> 24);
    }
    v4c_matrix *W = calloc(copies, sizeof *W);
    for (int c = 0; c < copies; c++) {
        uint8_t *d = mem + (data + scales) * c;
        if (k == WK_FP8)
            for (size_t i = 0; i < data; i++)
                if ((d[i] & 0x7F) == 0x7F) d[i] = 0x10; /* no NaN codes */
        if (k == WK_BF16)
            for (size_t i = 0; i < data; i += 2) d[i + 1] = (uint8_t)(0x3C + (d[i + 1] & 1)) | (d[i + 1] & 0x80);
        for (size_t i = 0; i < scales; i++) d[data + i] = (uint8_t)(120 + d[data + i] % 8);
        W[c] = (v4c_matrix){.kind = k, .op = OP_OTHER, .rows = rows, .cols = cols, .data = d, .scale = scales ? d + data : NULL};
    }
    int in_place = (panels || pack_quantized) && (k == WK_FP8 || k == WK_FP4);
    for (int c = 0; in_place && c < copies; c++) matrix_pack_in_place(&W[c]);
    if (in_place) panels = 1;
    uint8_t *packed = panels && !in_place ? huge_alloc(data * copies) : NULL;
    for (int c = 0; packed && c < copies; c++) matrix_pack_panels(&W[c], packed + data * c);
    float *x = malloc(sizeof(float) * cols * n), *y = malloc(sizeof(float) * rows * n);
    for (int i = 0; i < cols * n; i++) x[i] = (float)((rand() % 2001) - 1000) / 1000.0f;
    for (int c = 0; c < copies; c++) raw ? matmul(y, rows, &W[c], 0, rows, x, cols, n) : linear(y, &W[c], x, n); /* warm */
    if (ab) {
        double sum[2] = {0, 0};
        for (int r = 0; r < reps; r++)
            for (int m = 0; m < 2; m++) {
                matmul_streams = m;
                double t = now();
                for (int c = 0; c < copies; c++) raw ? matmul(y, rows, &W[c], 0, rows, x, cols, n) : linear(y, &W[c], x, n);
                sum[m] += now() - t;
            }
        matmul_streams = 1;
        double bytes = (double)(data + scales) * copies * reps;
        printf("%-5s %6d x %5d  %d token%s%s  rows side by side %7.2f GB/s %8.2f ms | streams %7.2f GB/s %8.2f ms\n", weight_kind_name[k], rows, cols, n,
               n > 1 ? "s" : " ", raw ? " (float input)" : "", bytes / sum[0] / 1e9, sum[0] / reps / copies * 1e3, bytes / sum[1] / 1e9,
               sum[1] / reps / copies * 1e3);
        munmap(mem, (data + scales) * copies + 64);
        if (packed) munmap(packed, data * copies);
        free(W), free(x), free(y);
        return;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (int c = 0; c < copies; c++) raw ? matmul(y, rows, &W[c], 0, rows, x, cols, n) : linear(y, &W[c], x, n);
        t = now() - t;
        if (t < best) best = t;
    }
    if (n == 1 && !flops)
        printf("%-5s %5d x %5d  %-9s %8.1f MB  %7.2f GB/s  %7.1f us/matrix\n", weight_kind_name[k], rows, cols, where,
               (data + scales) * copies / 1e6, (data + scales) * copies / best / 1e9, best / copies * 1e6);
    else
        printf("%-5s %6d x %5d  %d token%s%s  %7.1f GFLOP/s %7.2f GB/s %9.1f us/matrix\n", weight_kind_name[k], rows, cols, n, n > 1 ? "s" : " ",
               raw && panels ? " (float, panels)" : raw ? " (float input)" : panels ? " (panels)     " : "", 2.0 * rows * cols * n * copies / best / 1e9, (data + scales) * copies / best / 1e9, best / copies * 1e6);
    munmap(mem, (data + scales) * copies + 64);
    if (packed) munmap(packed, data * copies);
    free(W), free(x), free(y);
}

static void run(weight_kind k, int rows, int cols, int copies, int reps, const char *where, int n) { run_ab(k, rows, cols, copies, reps, where, n, 0, 0); }

/* The streams against the batch kernels, alternating in one process
 * (BENCHMARKS.md): decode's shapes from memory, then the 129,280 x 4096
 * BF16 head at 1-8 tokens. */
static void streams_ab(void) {
    const struct {
        weight_kind k;
        int rows, cols;
        const char *where;
    } shapes[] = {{WK_FP4, 2048, 4096, ""}, {WK_FP4, 4096, 2048, ""}, {WK_FP8, 32768, 1024, ""}, {WK_FP8, 4096, 8192, ""},
                  {WK_FP8, 1024, 4096, "float"}, {WK_BF16, 4096, 4096, ""}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        run_ab(shapes[i].k, shapes[i].rows, shapes[i].cols, (int)((512u << 20) / ((size_t)shapes[i].rows * shapes[i].cols)), 10, shapes[i].where, 1, 1, 0);
    for (int n = 1; n <= 8; n *= 2) run_ab(WK_BF16, 129280, 4096, 1, 4, "", n, 1, 0);
}

/* A few tokens (the server's batches): GFLOP/s of each product at 1-8
 * tokens with the weights in L2 (about 256 KB a thread: what a core
 * computes) and from memory (what a batched decode step gets). */
static void tokens(const char *only, int only_n) {
    const struct {
        weight_kind k;
        int rows, cols;
        const char *where; /* "float": FP8 with a float input (wo_a) */
    } shapes[] = {{WK_BF16, 129280, 128, ""}, {WK_BF16, 129280, 128, "panels"}, {WK_BF16, 129280, 4096, ""}, {WK_BF16, 129280, 4096, "panels"},
                  {WK_FP8, 4096, 8192, ""}, {WK_FP8, 4096, 8192, "panels"}, {WK_FP8, 32768, 1024, ""}, {WK_FP8, 32768, 1024, "panels"},
                  {WK_FP8, 8192, 4096, "float"}, {WK_FP8, 8192, 4096, "float panels"}, {WK_FP4, 2048, 4096, ""}, {WK_FP4, 2048, 4096, "panels"}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int n = only_n ? only_n : 1; n <= (only_n ? only_n : 8) && (!only || !strcmp(only, weight_kind_name[shapes[i].k])); n *= 2) {
            int rows = shapes[i].rows, cols = shapes[i].cols;
            size_t per_row = (size_t)cols * (shapes[i].k == WK_BF16 ? 4 : shapes[i].k == WK_FP8 ? 2 : 1) / 2;
            int l2 = (int)((256u << 10) * omp_get_max_threads() / per_row) / 128 * 128;
            run_ab(shapes[i].k, l2 < 128 ? 128 : l2, cols, 1, 2000, shapes[i].where, n, 0, 1);
            run_ab(shapes[i].k, rows, cols, (int)((512u << 20) / ((size_t)rows * per_row) + 1), 4, shapes[i].where, n, 0, 1);
        }
}

/* Decode's products on Flash's shapes, one token from memory (512 MB of
 * copies each), to see which of them falls short of the read bandwidth. */
static void decode_shapes(void) {
    const struct {
        weight_kind k;
        int rows, cols;
        const char *where, *name;
    } shapes[] = {{WK_FP8, 1024, 4096, "memory", "wq_a"},       {WK_FP8, 512, 4096, "memory", "wkv"},
                  {WK_FP8, 32768, 1024, "memory", "wq_b"},      {WK_FP8, 1024, 4096, "float-mem", "wo_a group"},
                  {WK_FP8, 4096, 8192, "memory", "wo_b"},       {WK_FP8, 2048, 4096, "memory", "shared w1/w3"},
                  {WK_FP8, 4096, 2048, "memory", "shared w2"},  {WK_FP4, 2048, 4096, "memory", "expert w1/w3"},
                  {WK_FP4, 4096, 2048, "memory", "expert w2"}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        size_t row = shapes[i].k == WK_FP4 ? (size_t)shapes[i].cols / 2 : (size_t)shapes[i].cols;
        int l2 = (int)((384u << 10) * omp_get_max_threads() / row) / 128 * 128; /* 384 KB a thread: in L2 */
        printf("%-13s ", shapes[i].name);
        run(shapes[i].k, l2 < 128 ? 128 : l2, shapes[i].cols, 1, 500, strcmp(shapes[i].where, "memory") ? "float-l2" : "cache", 1);
        printf("%-13s ", shapes[i].name);
        run(shapes[i].k, shapes[i].rows, shapes[i].cols, (int)((512u << 20) / ((size_t)shapes[i].rows * shapes[i].cols)), 5, shapes[i].where, 1);
    }
}

int main(int argc, char **argv) {
    int only_gemm = argc > 1 && !strcmp(argv[1], "gemm"), only_gemv = argc > 1 && !strcmp(argv[1], "gemv");
    printf("kernels: %s\n", kernel_backend_active()->name);
    if (argc > 1 && !strcmp(argv[1], "tokens")) {
        tokens(argc > 2 ? argv[2] : NULL, argc > 3 ? atoi(argv[3]) : 0);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "decode")) {
        pack_quantized = argc > 2 && !strcmp(argv[2], "panels");
        decode_shapes();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "streams")) {
        streams_ab();
        return 0;
    }
    weight_kind kinds[] = {WK_FP4, WK_FP8, WK_BF16};
    int shapes[][2] = {{2048, 4096}, {4096, 4096}, {4096, 4096}};
    for (int i = 0; i < 3 && !only_gemm; i++) {
        int rows = shapes[i][0], cols = shapes[i][1];
        run(kinds[i], 128, cols, 4, 200, "cache", 1);
        run(kinds[i], rows, cols, 512 * 1024 * 1024 / (rows * cols), 5, "memory", 1);
    }
    if (!only_gemm) run(WK_FP8, 1024, 4096, 128, 5, "float-mem", 1); /* wo_a at one token */
    if (only_gemv) return 0;
    /* prefill-like products: an expert's share of 512 tokens (64 experts,
     * top 6: 48), attention's 512 */
    run(WK_FP4, 2048, 4096, 2, 5, "", 48);
    run(WK_FP8, 4096, 4096, 1, 3, "", 512);
    run(WK_FP8, 1024, 4096, 4, 3, "float", 512);
    run(WK_BF16, 4096, 4096, 1, 3, "", 64);
    return 0;
}
