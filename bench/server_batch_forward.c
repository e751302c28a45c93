/* server_batch_forward MODEL_DIR: the engine alone, without the server —
 * decode steps of B sequences in one v4c_batch_feed (B = 1, 2, 4, 8), the
 * forward passes `v4c serve` runs, a batch-8 step that also takes a new
 * request's prompt, and the cost of sampling a token. Shows how much
 * batching can give.
 * Built and run by bench/server_bench.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/matrix.h" /* the per-operation times */
#include "v4c.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* `steps` forward passes of n_seq sequences (counts[i] tokens each, from
 * ids): seconds per step, with the products' times per step into prof_ms;
 * exits on an error. */
static double time_steps(v4c_session **ss, const int32_t *ids, const int *counts, int n_seq, int steps, float *logits, double *prof_ms) {
    char err[V4C_ERR_LEN];
    matmul_profile_reset();
    double t = now();
    for (int s = 0; s < steps; s++)
        if (v4c_batch_feed(ss, ids, counts, n_seq, logits, err)) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
    double dt = (now() - t) / steps;
    for (int o = 0; o < OP_COUNT; o++) prof_ms[o] = matmul_prof.seconds[o] / steps * 1e3;
    return dt;
}

static void print_products(const double *prof_ms) {
    for (int o = 0; o < OP_COUNT; o++) printf(" %s %.2f ms", op_class_name[o], prof_ms[o]);
    printf("\n");
}

int main(int argc, char **argv) {
    char err[V4C_ERR_LEN];
    v4c_model *m = argc == 2 ? v4c_model_open(argv[1], err) : NULL;
    if (!m) {
        fprintf(stderr, "usage: server_batch_forward MODEL_DIR%s%s\n", argc == 2 ? ": " : "", argc == 2 ? err : "");
        return 1;
    }
    int V = v4c_model_config(m)->vocab_size;
    float *logits = malloc((size_t)8 * V * sizeof(float));
    double base = 0;
    for (int B = 1; B <= 8; B *= 2) {
        v4c_session *ss[8];
        int32_t ids[8];
        int counts[8];
        for (int i = 0; i < B; i++) {
            ss[i] = v4c_session_new(m, NULL, err);
            ids[i] = 100 + i, counts[i] = 1;
        }
        double prof[OP_COUNT];
        v4c_batch_feed(ss, ids, counts, B, logits, err);
        double dt = time_steps(ss, ids, counts, B, 60, logits, prof);
        if (B == 1) base = 1 / dt;
        printf("batch %d: %.2f ms per step, %.1f tok/s (%.2fx); products:", B, dt * 1e3, B / dt, B / dt / base);
        print_products(prof);
        for (int i = 0; i < B; i++) v4c_session_free(ss[i]);
    }
    /* a step that also takes a new request's prompt (the load test's are
     * about 15 tokens): 7 decode tokens and a 15-token prompt, and the
     * prompt alone (the head runs on each sequence's last row only) */
    {
        enum { PROMPT = 15 };
        v4c_session *ss[8];
        int32_t ids[7 + PROMPT];
        int counts[8] = {1, 1, 1, 1, 1, 1, 1, PROMPT};
        for (int i = 0; i < 7 + PROMPT; i++) ids[i] = 100 + i;
        for (int i = 0; i < 8; i++) ss[i] = v4c_session_new(m, NULL, err);
        for (int alone = 0; alone <= 1; alone++) {
            v4c_session **seqs = alone ? ss + 7 : ss;
            const int32_t *in = alone ? ids + 7 : ids;
            const int *cnt = alone ? counts + 7 : counts;
            double prof[OP_COUNT], dt = time_steps(seqs, in, cnt, alone ? 1 : 8, 10, logits, prof);
            printf("%s: %.2f ms per step; products:", alone ? "the 15-token prompt alone" : "7 decode tokens + a 15-token prompt", dt * 1e3);
            print_products(prof);
        }
        for (int i = 0; i < 8; i++) v4c_session_free(ss[i]);
    }
    /* what the scheduler adds per sequence and step: sampling a token */
    v4c_sampling sp = v4c_sampling_default();
    sp.temperature = 0.8f;
    v4c_sampler *smp = v4c_sampler_new(&sp, V);
    float *probs = malloc((size_t)V * sizeof(float));
    double t = now();
    long sum = 0;
    for (int i = 0; i < 100; i++) {
        v4c_sampler_probs(smp, logits, probs);
        sum += v4c_sampler_draw(smp, probs);
    }
    printf("sampling at temperature 0.8 (vocab %d): %.2f ms per sequence and step (%ld)\n", V, (now() - t) / 100 * 1e3, sum % 10);
    v4c_sampler_free(smp);
    free(probs);
    free(logits);
    v4c_model_free(m);
    return 0;
}
