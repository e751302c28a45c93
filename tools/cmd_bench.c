/* v4c bench: prefill and decode speed against the machine's measured read
 * bandwidth and FMA peak, with the time split by operation. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kernels/backend.h"
#include "kernels/matrix.h"
#include "runtime/machine.h"
#include "v4c.h"

static int32_t *random_ids(int n, int vocab, unsigned seed) {
    int32_t *ids = malloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = (int32_t)((seed >> 8) % (unsigned)vocab);
    }
    return ids;
}

/* Achieved fraction of the machine's peak for operation k: the time its
 * flops would take at the BF16 dot peak (the part done by dot products)
 * plus the FP32 FMA peak (the rest), over the time they took. */
static double peak_fraction(const matmul_profile *p, int k, double fp32, double bf16) {
    if (p->seconds[k] <= 0 || fp32 <= 0) return 0;
    double dot = bf16 > 0 ? p->dot_flops[k] : 0, at_peak = dot / (bf16 > 0 ? bf16 : 1) + (p->flops[k] - dot) / fp32;
    return at_peak / 1e9 / p->seconds[k];
}

int cmd_bench(int argc, char **argv) {
    const char *dir = NULL;
    int prefill = 512, decode = 16, threads = 0, json = 0, ctx = 0, batch = 0;
    enum { O_JSON = 256, O_CTX };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"prefill", required_argument, 0, 'p'},
                                         {"decode", required_argument, 0, 'n'}, {"threads", required_argument, 0, 't'},
                                         {"batch", required_argument, 0, 'b'}, {"context", required_argument, 0, O_CTX},
                                         {"json", no_argument, 0, O_JSON}, {"help", no_argument, 0, 'h'}, {0}};
    const char *usage = "usage: v4c bench -m DIR [-p N] [-n N] [-t T] [--batch N] [--context N] [--json]\n"
                        "  -p N         prefill N tokens (default 512)\n"
                        "  -n N         then decode N tokens (default 16)\n"
                        "  --context N  decode after N tokens of context (prefilled first, not timed)\n";
    int o;
    while ((o = getopt_long(argc, argv, "m:p:n:t:b:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': dir = optarg; break;
        case 'p': prefill = cli_int("-p", optarg, 0, 1 << 24); break;
        case 'n': decode = cli_int("-n", optarg, 0, 1 << 24); break;
        case 't': threads = cli_int("-t", optarg, 1, 1024); break;
        case 'b': batch = cli_int("--batch", optarg, 1, 1 << 24); break;
        case O_CTX: ctx = cli_int("--context", optarg, 0, 1 << 26); break;
        case O_JSON: json = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "v4c bench: -m DIR is required\n%s", usage);
        return 2;
    }
    if (threads) v4c_set_threads(threads);
    threads = v4c_get_threads();
    char err[V4C_ERR_LEN];
    v4c_model *m = cli_open_model(dir);
    if (!m) return 1;
    const v4c_config *c = v4c_model_config(m);
    if (!json) fprintf(stderr, "measuring the machine (read bandwidth, FMA peak)...\n");
    /* Read bandwidth is measured before and after the timed runs: on a shared
     * machine it drifts, and the mean is what the runs saw on average. */
    double bw_before = machine_read_gbs(threads), fp32 = machine_fma_gflops(threads, 0), bf16 = machine_fma_gflops(threads, 1);

    v4c_session_params sp = {.max_ctx = ctx + prefill + decode + 8};
    v4c_session *s = v4c_session_new(m, &sp, err);
    if (!s) {
        fprintf(stderr, "v4c: %s\n", err);
        v4c_model_free(m);
        return 1;
    }
    int V = c->vocab_size;
    float *logits = malloc((size_t)V * sizeof(float));
    int32_t *ids = random_ids(ctx + prefill + decode + 4, V, 7);
    int rc = 0;
    for (int i = 0; i < ctx && !rc; i += 4096) /* context: untimed */
        rc = v4c_session_feed(s, ids + i, ctx - i < 4096 ? ctx - i : 4096, NULL, err);

    matmul_profile_reset();
    double t = omp_get_wtime();
    int chunk = batch ? batch : (prefill ? prefill : 1);
    for (int i = 0; i < prefill && !rc; i += chunk)
        rc = v4c_session_feed(s, ids + ctx + i, prefill - i < chunk ? prefill - i : chunk, i + chunk >= prefill ? logits : NULL, err);
    double prefill_s = omp_get_wtime() - t;
    matmul_profile pre = matmul_prof;

    /* decode: one warm-up step, then the timed ones */
    int32_t *dec = ids + ctx + prefill;
    if (!rc && decode > 0) rc = v4c_session_feed(s, dec, 1, logits, err);
    double cache_read = v4c_session_cache_read_bytes(s);
    matmul_profile_reset();
    t = omp_get_wtime();
    for (int i = 1; i <= decode && !rc; i++) rc = v4c_session_feed(s, dec + i, 1, logits, err);
    double decode_s = omp_get_wtime() - t;
    if (rc) {
        fprintf(stderr, "v4c: %s\n", err);
        goto done;
    }
    double bw_after = machine_read_gbs(threads), bw = (bw_before + bw_after) / 2;
    double wbytes = 0, dec_flops = 0;
    for (int k = 0; k < OP_COUNT; k++) wbytes += matmul_prof.bytes[k], dec_flops += matmul_prof.flops[k];
    double per_tok = decode ? (wbytes / decode + cache_read) : 0;
    double prefill_tps = prefill_s > 0 ? prefill / prefill_s : 0, decode_tps = decode_s > 0 ? decode / decode_s : 0;
    double gbs = per_tok * decode_tps / 1e9;
    if (json) {
        printf("{\"model\": \"%s\", \"threads\": %d, \"kernels\": \"%s\", \"context\": %d, \"prefill_tokens\": %d, \"prefill_tok_s\": %.3f, "
               "\"decode_tokens\": %d, \"decode_tok_s\": %.4f, \"decode_bytes_per_tok\": %.0f, \"decode_weight_bytes_per_tok\": %.0f, "
               "\"decode_cache_bytes_per_tok\": %.0f, \"decode_gb_s\": %.3f, \"machine_read_gb_s\": %.3f, \"machine_read_gb_s_before\": %.3f, "
               "\"machine_read_gb_s_after\": %.3f, \"machine_fp32_gflops\": %.1f, "
               "\"machine_bf16_gflops\": %.1f, \"kv_cache_bytes\": %.0f, \"prefill_ops\": {",
               dir, threads, kernel_backend_active()->name, ctx, prefill, prefill_tps, decode, decode_tps, per_tok, decode ? wbytes / decode : 0,
               cache_read, gbs, bw, bw_before, bw_after, fp32, bf16, v4c_session_cache_bytes(s));
        for (int k = 0; k < OP_COUNT; k++)
            printf("%s\"%s\": {\"seconds\": %.4f, \"gflops\": %.2f, \"bf16_dot_share\": %.3f, \"peak_fraction\": %.3f}", k ? ", " : "",
                   op_class_name[k], pre.seconds[k], pre.seconds[k] > 0 ? pre.flops[k] / pre.seconds[k] / 1e9 : 0,
                   pre.flops[k] > 0 ? pre.dot_flops[k] / pre.flops[k] : 0, peak_fraction(&pre, k, fp32, bf16));
        printf("}}\n");
    } else {
        printf("model %s, %d threads, %s kernels\n", dir, threads, kernel_backend_active()->name);
        printf("machine: read %.1f GB/s (%.1f before the runs, %.1f after), FP32 FMA %.1f GFLOP/s, BF16 dot %.1f GFLOP/s\n", bw, bw_before,
               bw_after, fp32, bf16);
        printf("prefill: %d tokens in %.3f s = %.2f tok/s%s\n", prefill, prefill_s, prefill_tps, ctx ? " (after context)" : "");
        printf("  operation            time     GFLOP/s  via BF16 dot  of the peak for that mix\n");
        for (int k = 0; k < OP_COUNT; k++)
            if (pre.seconds[k] > 0)
                printf("  %-16s %7.3f s  %8.2f  %10.0f%%  %9.1f%%\n", op_class_name[k], pre.seconds[k], pre.flops[k] / pre.seconds[k] / 1e9,
                       100 * pre.dot_flops[k] / pre.flops[k], 100 * peak_fraction(&pre, k, fp32, bf16));
        printf("decode: %d tokens in %.3f s = %.3f tok/s at context %d\n", decode, decode_s, decode_tps, ctx + prefill + 1);
        printf("  bytes per token: %.1f MB weights + %.2f MB cache = %.1f MB\n", wbytes / (decode ? decode : 1) / 1e6, cache_read / 1e6, per_tok / 1e6);
        printf("  %.2f GB/s = %.1f%% of the measured read bandwidth\n", gbs, 100 * gbs / bw);
        for (int k = 0; k < OP_COUNT; k++)
            if (matmul_prof.seconds[k] > 0)
                printf("  %-16s %7.3f s  %6.2f GB/s\n", op_class_name[k], matmul_prof.seconds[k], matmul_prof.bytes[k] / matmul_prof.seconds[k] / 1e9);
        printf("  kv cache held: %.2f MB\n", v4c_session_cache_bytes(s) / 1e6);
    }
done:
    free(ids);
    free(logits);
    v4c_session_free(s);
    v4c_model_free(m);
    return rc ? 1 : 0;
}
