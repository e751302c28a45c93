/* Saved sessions.
 *   test_session_file save MODEL FILE        prefill part A, save
 *   test_session_file continue MODEL FILE OUT load (a new process), feed part B
 *   test_session_file straight MODEL OUT     parts A and B without saving
 *   test_session_file errors MODEL OTHER FILE refusal of bad files
 * session_roundtrip.sh runs the first three and compares OUT files bytewise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "v4c.h"

enum { PART_A = 43, PART_B = 9 };

static int32_t token(int i, int V) { return (i * 71 + 13) % V; }

static v4c_model *open_model(const char *dir) {
    char err[V4C_ERR_LEN];
    v4c_model *m = v4c_model_open(dir, err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return m;
}

static void feed_a(v4c_session *s, int V) {
    char err[V4C_ERR_LEN];
    int32_t ids[PART_A];
    for (int i = 0; i < PART_A; i++) ids[i] = token(i, V);
    CHECK(v4c_session_feed(s, ids, 20, NULL, err) == 0 && v4c_session_feed(s, ids + 20, PART_A - 20, NULL, err) == 0, "feed A: %s", err);
}

/* Part B one token at a time, main and MTP logits of each written to out. */
static void feed_b(v4c_session *s, int V, const char *out) {
    char err[V4C_ERR_LEN];
    float *logits = malloc(sizeof(float) * V);
    FILE *f = fopen(out, "wb");
    for (int i = PART_A; i < PART_A + PART_B; i++) {
        int32_t t = token(i, V);
        CHECK(v4c_session_mtp(s, t, logits, err) == 0, "mtp: %s", err);
        fwrite(logits, sizeof(float), V, f);
        CHECK(v4c_session_feed(s, &t, 1, logits, err) == 0, "feed B: %s", err);
        fwrite(logits, sizeof(float), V, f);
    }
    fclose(f);
    free(logits);
}

static v4c_session *new_session(v4c_model *m) {
    char err[V4C_ERR_LEN];
    v4c_session_params p = {.use_mtp = 1};
    return v4c_session_new(m, &p, err);
}

static void test_errors(const char *model, const char *other, const char *file) {
    char err[V4C_ERR_LEN], bad[4200];
    v4c_model *m = open_model(model), *o = open_model(other);
    int V = v4c_model_config(m)->vocab_size;
    v4c_session *s = new_session(m);
    feed_a(s, V);
    CHECK(v4c_session_save(s, file, err) == 0, "save: %s", err);
    v4c_session_params p = {.use_mtp = 1}, nomtp = {0};

    v4c_session *l = v4c_session_load(m, file, &p, err);
    CHECK(l && v4c_session_pos(l) == PART_A, "a good file loads with its %d tokens", PART_A);
    CHECK(l && !memcmp(v4c_session_tokens(l), v4c_session_tokens(s), PART_A * sizeof(int32_t)), "token ids survive");
    v4c_session_free(l);
    l = v4c_session_load(m, file, &nomtp, err);
    CHECK(l != NULL, "an MTP session loads without MTP too: %s", err);
    v4c_session_free(l);

    CHECK(v4c_session_load(o, file, &p, err) == NULL && strstr(err, "different model"), "another model's session is refused: %s", err);

    size_t n;
    FILE *f = fopen(file, "rb");
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(n);
    CHECK(fread(data, 1, n, f) == n, "read back");
    fclose(f);
    snprintf(bad, sizeof bad, "%s.bad", file);

    FILE *w = fopen(bad, "wb");
    fwrite(data, 1, n / 2, w);
    fclose(w);
    CHECK(v4c_session_load(m, bad, &p, err) == NULL && strstr(err, bad), "truncated file refused: %s", err);

    data[n / 3] ^= 0x40;
    w = fopen(bad, "wb");
    fwrite(data, 1, n, w);
    fclose(w);
    CHECK(v4c_session_load(m, bad, &p, err) == NULL && strstr(err, "corrupt"), "flipped bit refused: %s", err);
    data[n / 3] ^= 0x40;

    data[8] = 99; /* version */
    w = fopen(bad, "wb");
    fwrite(data, 1, n, w);
    fclose(w);
    CHECK(v4c_session_load(m, bad, &p, err) == NULL && strstr(err, "version"), "unknown version refused: %s", err);

    test_write_text(bad, "not a session at all, just some text here");
    CHECK(v4c_session_load(m, bad, &p, err) == NULL && strstr(err, "not a v4c session"), "foreign file refused: %s", err);
    CHECK(v4c_session_load(m, "/nonexistent/x.session", &p, err) == NULL && strstr(err, "cannot open"), "missing file: %s", err);

    /* saved without MTP, loaded with MTP: refused with a clear message */
    v4c_session *plain = v4c_session_new(m, &nomtp, err);
    feed_a(plain, V);
    CHECK(v4c_session_save(plain, bad, err) == 0, "save: %s", err);
    CHECK(v4c_session_load(m, bad, &p, err) == NULL && strstr(err, "MTP"), "MTP state missing is refused: %s", err);
    v4c_session_free(plain);
    unlink(bad);
    free(data);
    v4c_session_free(s);
    v4c_model_free(m);
    v4c_model_free(o);
}

int main(int argc, char **argv) {
    char err[V4C_ERR_LEN];
    if (argc == 4 && !strcmp(argv[1], "save")) {
        v4c_model *m = open_model(argv[2]);
        v4c_session *s = new_session(m);
        feed_a(s, v4c_model_config(m)->vocab_size);
        CHECK(v4c_session_save(s, argv[3], err) == 0, "save: %s", err);
        v4c_session_free(s);
        v4c_model_free(m);
    } else if (argc == 5 && !strcmp(argv[1], "continue")) {
        v4c_model *m = open_model(argv[2]);
        v4c_session_params p = {.use_mtp = 1};
        v4c_session *s = v4c_session_load(m, argv[3], &p, err);
        CHECK(s != NULL, "load: %s", err);
        if (s) feed_b(s, v4c_model_config(m)->vocab_size, argv[4]);
        v4c_session_free(s);
        v4c_model_free(m);
    } else if (argc == 4 && !strcmp(argv[1], "straight")) {
        v4c_model *m = open_model(argv[2]);
        v4c_session *s = new_session(m);
        feed_a(s, v4c_model_config(m)->vocab_size);
        feed_b(s, v4c_model_config(m)->vocab_size, argv[3]);
        v4c_session_free(s);
        v4c_model_free(m);
    } else if (argc == 5 && !strcmp(argv[1], "errors")) {
        test_errors(argv[2], argv[3], argv[4]);
    } else {
        fprintf(stderr, "usage: see the comment at the top of test_session_file.c\n");
        return 2;
    }
    return test_done(argv[1]);
}
