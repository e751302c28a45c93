/* Decoding: exact rollback of every cache (main and MTP, across compressor
 * block boundaries), greedy output identical with and without MTP
 * speculative decoding, and the sampler's filters on crafted distributions.
 * usage: test_generate GOLDEN_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "v4c.h"

static v4c_session *fed(v4c_model *m, const int32_t *ids, int n) {
    char err[V4C_ERR_LEN];
    v4c_session_params sp = {.use_mtp = 1};
    v4c_session *s = v4c_session_new(m, &sp, err);
    CHECK(v4c_session_feed(s, ids, n, NULL, err) == 0, "prefill: %s", err);
    return s;
}

static int same(const float *a, const float *b, int n) { return !memcmp(a, b, (size_t)n * sizeof(float)); }

/* Feed prompt, then [x, y(, w)] and roll back to keep only x; compare with a
 * session that never saw the rolled-back tokens. */
static void test_rollback(v4c_model *m, const char *name) {
    char err[V4C_ERR_LEN];
    int V = v4c_model_config(m)->vocab_size;
    float *a = malloc(sizeof(float) * 3 * V), *b = malloc(sizeof(float) * 3 * V);
    int32_t ids[80];
    for (int i = 0; i < 80; i++) ids[i] = (i * 53 + 5) % V;
    for (int n = 28; n < 48; n++) /* every residue mod 4 and mod 16 */
        for (int back = 1; back <= V4C_MAX_ROLLBACK; back++) {
            v4c_session *s1 = fed(m, ids, n), *s2 = fed(m, ids, n);
            int32_t extra[3] = {ids[n], (ids[n] + 1) % V, (ids[n] + 2) % V};
            CHECK(v4c_session_feed_all(s1, extra, 1 + back, a, err) == 0, "feed: %s", err);
            CHECK(v4c_session_rollback(s1, back, err) == 0, "rollback: %s", err);
            CHECK(v4c_session_feed(s2, extra, 1, NULL, err) == 0, "feed: %s", err);
            CHECK(v4c_session_pos(s1) == v4c_session_pos(s2), "positions agree");
            int32_t z = (ids[n] * 3 + 1) % V, w = (z * 5 + 2) % V;
            /* MTP at the kept position with a new next token, then continue. */
            CHECK(v4c_session_mtp(s1, z, a, err) == 0 && v4c_session_mtp(s2, z, b, err) == 0, "mtp: %s", err);
            CHECK(same(a, b, V), "%s: prompt %d, rollback %d: MTP logits after rollback", name, n, back);
            CHECK(v4c_session_feed(s1, &z, 1, a + V, err) == 0 && v4c_session_feed(s2, &z, 1, b + V, err) == 0, "feed: %s", err);
            CHECK(same(a + V, b + V, V), "%s: prompt %d, rollback %d: logits after rollback", name, n, back);
            CHECK(v4c_session_mtp(s1, w, a + 2 * V, err) == 0 && v4c_session_mtp(s2, w, b + 2 * V, err) == 0, "mtp: %s", err);
            CHECK(same(a + 2 * V, b + 2 * V, V), "%s: prompt %d, rollback %d: later MTP logits", name, n, back);
            v4c_session_free(s1);
            v4c_session_free(s2);
        }
    v4c_session *s = fed(m, ids, 3);
    CHECK(v4c_session_rollback(s, V4C_MAX_ROLLBACK + 1, err) != 0, "rollback beyond the limit is refused");
    CHECK(v4c_session_rollback(s, -1, err) != 0, "negative rollback is refused");
    v4c_session_free(s);
    free(a);
    free(b);
}

typedef struct {
    int32_t ids[64];
    int n;
} collected;

static int collect(void *user, int32_t t) {
    collected *c = user;
    if (c->n < 64) c->ids[c->n++] = t;
    return 0;
}

static collected generate(v4c_model *m, const int32_t *prompt, int n, int use_mtp, int batch, v4c_sampling sp, int max_tokens,
                          v4c_generate_stats *st) {
    char err[V4C_ERR_LEN];
    v4c_session_params p = {.use_mtp = use_mtp};
    v4c_session *s = v4c_session_new(m, &p, err);
    v4c_sampler *smp = v4c_sampler_new(&sp, v4c_model_config(m)->vocab_size);
    collected c = {.n = 0};
    v4c_generate_opts o = {.max_tokens = max_tokens, .batch = batch, .use_mtp = use_mtp, .eos_id = -1, .on_token = collect, .user = &c};
    CHECK(v4c_generate(s, smp, prompt, n, &o, st, err) == 0, "generate: %s", err);
    v4c_sampler_free(smp);
    v4c_session_free(s);
    return c;
}

static void test_greedy_mtp(v4c_model *m, const char *name) {
    int V = v4c_model_config(m)->vocab_size;
    v4c_sampling greedy = v4c_sampling_default();
    for (int trial = 0; trial < 3; trial++) {
        int32_t prompt[40];
        int n = 20 + 7 * trial;
        for (int i = 0; i < n; i++) prompt[i] = (i * 29 + trial * 7 + 3) % V;
        v4c_generate_stats st;
        collected plain = generate(m, prompt, n, 0, 0, greedy, 24, &st);
        collected spec = generate(m, prompt, n, 1, 5, greedy, 24, &st);
        CHECK(plain.n == 24 && spec.n == 24 && !memcmp(plain.ids, spec.ids, sizeof plain.ids[0] * 24),
              "%s trial %d: greedy output identical with and without MTP", name, trial);
        CHECK(st.drafted > 0 && st.accepted <= st.drafted, "%s: drafts counted (%d/%d)", name, st.accepted, st.drafted);
    }
    /* Sampling with MTP: same seed, same output; the acceptance rule runs. */
    v4c_sampling hot = v4c_sampling_default();
    hot.temperature = 1.5f;
    hot.seed = 99;
    int32_t prompt[10] = {5, 9, 2, 7, 1, 8, 3, 6, 4, 0};
    v4c_generate_stats st1, st2;
    collected a = generate(m, prompt, 10, 1, 0, hot, 30, &st1), b = generate(m, prompt, 10, 1, 0, hot, 30, &st2);
    CHECK(a.n == 30 && !memcmp(a.ids, b.ids, sizeof a.ids[0] * 30), "%s: sampled MTP output is reproducible", name);
    CHECK(st1.accepted == st2.accepted && st1.drafted > 0, "%s: acceptance reproducible", name);
}

/* A vocabulary-sized distribution (the vectorised softmax and the blocked
 * draw): probabilities against a double softmax, including logits far
 * below the maximum and -inf, and draw frequencies across many blocks. */
static void test_sampler_large(void) {
    enum { V = 1000 };
    static float logits[V], probs[V];
    unsigned seed = 9;
    for (int i = 0; i < V; i++) {
        seed = seed * 1664525u + 1013904223u;
        logits[i] = ((seed >> 8) / 16777216.0f) * 8 - 4;
    }
    logits[7] = -INFINITY, logits[8] = -300, logits[999] = 5;
    v4c_sampling sp = v4c_sampling_default();
    sp.temperature = 0.7f;
    v4c_sampler *s = v4c_sampler_new(&sp, V);
    v4c_sampler_probs(s, logits, probs);
    double mx = 5, den = 0, worst = 0;
    for (int i = 0; i < V; i++) den += isinf(logits[i]) ? 0 : exp((logits[i] - mx) / 0.7);
    for (int i = 0; i < V; i++) {
        double want = isinf(logits[i]) ? 0 : exp((logits[i] - mx) / 0.7) / den;
        double e = fabs(probs[i] - want) / (want > 1e-30 ? want : 1);
        if (e > worst) worst = e;
    }
    CHECK(worst < 2e-6 && probs[7] == 0, "large softmax: worst relative error %.3g", worst);
    static int hist[V];
    for (int i = 0; i < 200000; i++) hist[v4c_sampler_draw(s, probs)]++;
    double chi = 0;
    for (int i = 0; i < V; i++)
        if (probs[i] > 1e-4) chi += (hist[i] - 200000.0 * probs[i]) * (hist[i] - 200000.0 * probs[i]) / (200000.0 * probs[i]);
    CHECK(chi < 1300, "large draw: chi-square %.0f over ~1000 bins", chi);
    v4c_sampler_free(s);
}

static void test_sampler(void) {
    enum { V = 6 };
    /* probabilities after softmax at temperature 1: 0.4, 0.3, 0.15, 0.1, 0.05, 0 (tiny) */
    float p0[V] = {0.4f, 0.3f, 0.15f, 0.1f, 0.05f, 1e-12f}, logits[V], probs[V];
    for (int i = 0; i < V; i++) logits[i] = logf(p0[i]);
    v4c_sampling sp = v4c_sampling_default();
    sp.temperature = 1;

    sp.top_p = 0.8f; /* 0.4 + 0.3 = 0.7 < 0.8, + 0.15 reaches it: keep 3 */
    v4c_sampler *s = v4c_sampler_new(&sp, V);
    v4c_sampler_probs(s, logits, probs);
    CHECK(probs[0] > 0 && probs[1] > 0 && probs[2] > 0 && probs[3] == 0 && probs[4] == 0, "top-p 0.8 keeps the first three");
    CHECK(fabsf(probs[0] - 0.4f / 0.85f) < 1e-5f, "top-p renormalises (%g)", probs[0]);
    v4c_sampler_free(s);

    sp.top_p = 1;
    sp.min_p = 0.3f; /* threshold 0.12: keeps 0.4, 0.3, 0.15 */
    s = v4c_sampler_new(&sp, V);
    v4c_sampler_probs(s, logits, probs);
    CHECK(probs[2] > 0 && probs[3] == 0 && probs[5] == 0, "min-p 0.3 drops tokens below 0.12");
    v4c_sampler_free(s);

    sp.min_p = 0;
    sp.top_k = 2;
    s = v4c_sampler_new(&sp, V);
    v4c_sampler_probs(s, logits, probs);
    CHECK(probs[0] > 0 && probs[1] > 0 && probs[2] == 0, "top-k 2 keeps two");
    v4c_sampler_free(s);

    /* top-k 1 is greedy whatever the temperature and seed */
    sp.top_k = 1;
    sp.temperature = 5;
    for (uint64_t seed = 0; seed < 20; seed++) {
        sp.seed = seed;
        s = v4c_sampler_new(&sp, V);
        CHECK(v4c_sampler_sample(s, logits) == 0, "top-k 1 picks the argmax");
        v4c_sampler_free(s);
    }

    /* fixed seed -> the same draws; different seed -> (almost surely) different */
    sp = v4c_sampling_default();
    sp.temperature = 1;
    sp.seed = 1234;
    int draws1[64], draws2[64], draws3[64], hist[V] = {0};
    v4c_sampler *a = v4c_sampler_new(&sp, V), *b = v4c_sampler_new(&sp, V);
    sp.seed = 4321;
    v4c_sampler *c = v4c_sampler_new(&sp, V);
    for (int i = 0; i < 64; i++) {
        draws1[i] = v4c_sampler_sample(a, logits);
        draws2[i] = v4c_sampler_sample(b, logits);
        draws3[i] = v4c_sampler_sample(c, logits);
    }
    CHECK(!memcmp(draws1, draws2, sizeof draws1), "same seed, same draws");
    CHECK(memcmp(draws1, draws3, sizeof draws1) != 0, "another seed, other draws");
    for (int i = 0; i < 20000; i++) hist[v4c_sampler_sample(a, logits)]++;
    for (int k = 0; k < 5; k++) CHECK(fabs(hist[k] / 20000.0 - p0[k]) < 0.015, "token %d drawn with frequency %g ~ %g", k, hist[k] / 20000.0, p0[k]);
    v4c_sampler_free(a), v4c_sampler_free(b), v4c_sampler_free(c);

    /* penalties: token 0 seen -> repetition 2 halves its positive logit; presence subtracts */
    float lg[V] = {2, 1.5f, 0, -1, -2, -3};
    sp = v4c_sampling_default();
    sp.repetition_penalty = 2;
    s = v4c_sampler_new(&sp, V);
    v4c_sampler_accept(s, 0);
    CHECK(v4c_sampler_sample(s, lg) == 1, "repetition penalty 2 moves the argmax off the seen token (2 -> 1 < 1.5)");
    v4c_sampler_free(s);
    sp = v4c_sampling_default();
    sp.presence_penalty = 0.4f;
    s = v4c_sampler_new(&sp, V);
    v4c_sampler_accept(s, 0);
    CHECK(v4c_sampler_sample(s, lg) == 0, "presence 0.4 leaves token 0 ahead (1.6 > 1.5)");
    v4c_sampler_accept(s, 5);
    sp.presence_penalty = 0.6f;
    v4c_sampler_free(s);
    s = v4c_sampler_new(&sp, V);
    v4c_sampler_accept(s, 0);
    CHECK(v4c_sampler_sample(s, lg) == 1, "presence 0.6 does not (1.4 < 1.5)");
    v4c_sampler_free(s);
}

/* Continuous batching: sessions at different positions, some prefilling a
 * chunk and some decoding one token, in one pass; each must get exactly the
 * logits it gets alone. */
static void test_batch_feed(v4c_model *m, const char *name) {
    char err[V4C_ERR_LEN];
    int V = v4c_model_config(m)->vocab_size;
    int32_t ids[120];
    for (int i = 0; i < 120; i++) ids[i] = (i * 17 + 3) % V;
    int lens[3] = {5, 33, 60}; /* already fed */
    v4c_session *batched[3], *alone[3];
    for (int k = 0; k < 3; k++) {
        v4c_session_params p = {.use_mtp = k == 1};
        batched[k] = v4c_session_new(m, &p, err);
        alone[k] = v4c_session_new(m, &p, err);
        CHECK(v4c_session_feed(batched[k], ids + k, lens[k], NULL, err) == 0 && v4c_session_feed(alone[k], ids + k, lens[k], NULL, err) == 0,
              "prefill: %s", err);
    }
    float *a = malloc(sizeof(float) * 3 * V), *b = malloc(sizeof(float) * V);
    for (int step = 0; step < 4; step++) {
        int counts[3] = {1, step == 0 ? 9 : 1, 1};
        int32_t feed_ids[11];
        for (int i = 0; i < 11; i++) feed_ids[i] = (step * 31 + i * 7) % V;
        CHECK(v4c_batch_feed(batched, feed_ids, counts, 3, a, err) == 0, "batch feed: %s", err);
        for (int k = 0, off = 0; k < 3; off += counts[k++]) {
            CHECK(v4c_session_feed(alone[k], feed_ids + off, counts[k], b, err) == 0, "feed: %s", err);
            CHECK(same(a + (size_t)k * V, b, V), "%s: step %d, session %d: batched logits equal feeding alone", name, step, k);
        }
    }
    v4c_session *dup[2] = {batched[0], batched[0]};
    int one[2] = {1, 1};
    CHECK(v4c_batch_feed(dup, ids, one, 2, a, err) != 0 && strstr(err, "twice"), "a session twice in one batch is refused: %s", err);
    for (int k = 0; k < 3; k++) v4c_session_free(batched[k]), v4c_session_free(alone[k]);
    free(a);
    free(b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_generate GOLDEN_DIR\n");
        return 2;
    }
    test_sampler();
    test_sampler_large();
    const char *cases[] = {"tiny-flash", "tiny-bf16"};
    for (int i = 0; i < 2; i++) {
        char dir[4096], err[V4C_ERR_LEN];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], cases[i]);
        v4c_model *m = v4c_model_open(dir, err);
        CHECK(m != NULL, "open %s: %s", dir, err);
        if (!m) continue;
        test_rollback(m, cases[i]);
        test_greedy_mtp(m, cases[i]);
        test_batch_feed(m, cases[i]);
        v4c_model_free(m);
    }
    return test_done("test_generate");
}
