/* Model-level checks on the golden checkpoints:
 *  - parameter count by an independent formula from config.json, through
 *    the API and through `v4c info`;
 *  - chunked prefill gives bit-identical logits to token-by-token decode;
 *  - session errors (token outside the vocabulary, context overflow, MTP
 *    misuse) are reported, not crashed on.
 * usage: test_model GOLDEN_DIR V4C_BINARY */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "v4c.h"

static int64_t expected_params(const v4c_config *c) {
    int64_t D = c->hidden_size, hc = c->hc_mult, mix = (2 + hc) * hc, H = c->n_heads, Dh = c->head_dim;
    int64_t qr = c->q_lora_rank, E = c->n_routed_experts, I = c->moe_inter, nI = c->index_n_heads, dI = c->index_head_dim;
    int64_t total = 2 * (int64_t)c->vocab_size * D + D + hc * hc * D + hc + 1; /* embed, head, norm, hc head */
    for (int l = 0; l < c->n_layers + c->n_mtp; l++) {
        int r = c->compress_ratios[l], is_mtp = l >= c->n_layers, hash = !is_mtp && l < c->n_hash_layers;
        total += 2 * (mix * hc * D + mix + 3) + 2 * D;                                   /* mHC, attn/ffn norms */
        total += qr * D + qr + H * Dh * qr + Dh * D + Dh + H * Dh * c->o_lora_rank + D * c->o_groups * c->o_lora_rank + H;
        if (r > 0) {
            int64_t cw = (r == 4 ? 2 : 1) * Dh;
            total += 2 * cw * D + r * cw + Dh;
        }
        if (r == 4) total += nI * dI * qr + nI * D + 2 * (2 * dI) * D + 4 * 2 * dI + dI;
        total += E * D + (hash ? 0 : E) + E * 3 * I * D + (int64_t)c->n_shared_experts * 3 * I * D;
        if (is_mtp) total += 2 * D * D + 3 * D + hc * hc * D + hc + 1;
    }
    return total;
}

static void test_param_count(const char *dir, const char *bin) {
    char err[V4C_ERR_LEN];
    v4c_model *m = v4c_model_open(dir, err);
    CHECK(m != NULL, "%s opens: %s", dir, err);
    if (!m) return;
    v4c_model_stats st;
    v4c_model_get_stats(m, &st);
    int64_t want = expected_params(v4c_model_config(m));
    CHECK(st.params_total == want, "%s: %lld parameters, formula says %lld", dir, (long long)st.params_total, (long long)want);
    CHECK(st.n_tensors_ignored == 0, "%s: every tensor is used", dir);

    char cmd[8192], line[512];
    snprintf(cmd, sizeof cmd, "'%s' info -m '%s'", bin, dir);
    FILE *p = popen(cmd, "r");
    long long printed = -1;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, " total %lld", &printed) == 1) break;
    while (fgets(line, sizeof line, p)) {}
    CHECK(pclose(p) == 0, "v4c info exits 0");
    CHECK(printed == want, "%s: v4c info prints total %lld, want %lld", dir, printed, (long long)want);
    v4c_model_free(m);
}

static float *run_chunks(v4c_model *m, const int32_t *ids, int n, int chunk, int n_then) {
    char err[V4C_ERR_LEN];
    int V = v4c_model_config(m)->vocab_size;
    v4c_session_params sp = {.use_mtp = 1};
    v4c_session *s = v4c_session_new(m, &sp, err);
    float *out = calloc((size_t)(2 + 2 * n_then) * V, sizeof(float));
    int prompt = n - n_then;
    for (int i = 0; i < prompt; i += chunk) {
        int k = prompt - i < chunk ? prompt - i : chunk;
        CHECK(v4c_session_feed(s, ids + i, k, i + k == prompt ? out : NULL, err) == 0, "feed: %s", err);
    }
    CHECK(v4c_session_mtp(s, ids[prompt], out + V, err) == 0, "mtp: %s", err);
    for (int j = 0; j < n_then; j++) {
        CHECK(v4c_session_feed(s, ids + prompt + j, 1, out + (size_t)(2 + 2 * j) * V, err) == 0, "decode: %s", err);
        CHECK(v4c_session_mtp(s, (ids[prompt + j] * 7 + 3) % V, out + (size_t)(3 + 2 * j) * V, err) == 0, "mtp: %s", err);
    }
    CHECK(v4c_session_pos(s) == n, "position after feeding %d tokens is %d", n, v4c_session_pos(s));
    v4c_session_free(s);
    return out;
}

static void test_chunk_invariance(const char *dir) {
    char err[V4C_ERR_LEN];
    v4c_model *m = v4c_model_open(dir, err);
    if (!m) return;
    int V = v4c_model_config(m)->vocab_size, n = 45, n_then = 4;
    int32_t ids[45];
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 11) % V;
    float *ref = run_chunks(m, ids, n, 1, n_then);
    int chunks[] = {41, 5, 16};
    for (int c = 0; c < 3; c++) {
        float *got = run_chunks(m, ids, n, chunks[c], n_then);
        size_t total = (size_t)(2 + 2 * n_then) * V, diff = 0;
        for (size_t i = 0; i < total; i++) diff += got[i] != ref[i];
        CHECK(diff == 0, "%s: chunk %d differs from token-by-token in %zu of %zu logits", dir, chunks[c], diff, total);
        free(got);
    }
    free(ref);
    v4c_model_free(m);
}

static void test_session_errors(const char *dir) {
    char err[V4C_ERR_LEN];
    v4c_model *m = v4c_model_open(dir, err);
    if (!m) return;
    int V = v4c_model_config(m)->vocab_size;
    v4c_session_params sp = {.max_ctx = 8};
    v4c_session *s = v4c_session_new(m, &sp, err);
    int32_t bad[2] = {1, V};
    CHECK(v4c_session_feed(s, bad, 2, NULL, err) != 0 && strstr(err, "vocabulary"), "id == vocab_size is refused: %s", err);
    bad[1] = -5;
    CHECK(v4c_session_feed(s, bad, 2, NULL, err) != 0 && strstr(err, "-5"), "negative id is refused: %s", err);
    int32_t nine[9] = {0};
    CHECK(v4c_session_feed(s, nine, 9, NULL, err) != 0 && strstr(err, "context"), "9 tokens exceed a context of 8: %s", err);
    CHECK(v4c_session_pos(s) == 0, "a refused feed consumes nothing");
    CHECK(v4c_session_feed(s, nine, 8, NULL, err) == 0, "8 tokens fit: %s", err);
    CHECK(v4c_session_feed(s, nine, 1, NULL, err) != 0 && strstr(err, "context"), "the 9th token does not: %s", err);
    CHECK(v4c_session_mtp(s, 0, NULL, err) != 0 && strstr(err, "use_mtp"), "MTP without use_mtp is refused: %s", err);
    v4c_session_free(s);
    v4c_session_params mp = {.use_mtp = 1};
    s = v4c_session_new(m, &mp, err);
    float *logits = malloc(V * sizeof(float));
    CHECK(v4c_session_mtp(s, 0, logits, err) != 0, "MTP before any token is refused: %s", err);
    free(logits);
    v4c_session_free(s);
    v4c_model_free(m);
}

/* The fingerprint (session files) is the checkpoint's, whatever layout the
 * weights are held in: packed in panels (the default), as stored
 * (V4C_PANELS=0), or mapped from the file (V4C_MMAP=1). */
static void test_fingerprint_layouts(const char *dir) {
    char err[V4C_ERR_LEN];
    const char *modes[][2] = {{"V4C_PANELS", "0"}, {"V4C_MMAP", "1"}};
    v4c_model *m = v4c_model_open(dir, err);
    if (!m) return;
    uint64_t packed = v4c_model_fingerprint(m);
    v4c_model_free(m);
    for (int i = 0; i < 2; i++) {
        setenv(modes[i][0], modes[i][1], 1);
        m = v4c_model_open(dir, err);
        unsetenv(modes[i][0]);
        CHECK(m && v4c_model_fingerprint(m) == packed, "%s: fingerprint with %s=%s differs", dir, modes[i][0], modes[i][1]);
        v4c_model_free(m);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_model GOLDEN_DIR V4C_BINARY\n");
        return 2;
    }
    const char *cases[] = {"tiny-flash", "tiny-bf16"};
    for (int i = 0; i < 2; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], cases[i]);
        test_param_count(dir, argv[2]);
        test_chunk_invariance(dir);
        test_session_errors(dir);
        test_fingerprint_layouts(dir);
    }
    return test_done("test_model");
}
