/* C side of the tokenizer benchmark: encodes the corpus chunks on one
 * thread (best of 3 passes), reports MB/s, and checks every chunk's ids
 * against the JavaScript tokenizer's.
 * usage: tokenizer_bench tokenizer.json corpus.jsonl [js_ids.txt] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "v4c_text.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Compares chunk ids with one line "1,2,3" of the JS output. */
static int same_ids(const int32_t *ids, long n, const char *line) {
    long i = 0;
    const char *p = line;
    while (*p && *p != '\n') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || i >= n || ids[i] != v) return 0;
        i++;
        p = *end == ',' ? end + 1 : end;
    }
    return i == n;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s tokenizer.json corpus.jsonl [js_ids.txt]\n", argv[0]);
        return 2;
    }
    char err[V4C_ERR_LEN];
    double t0 = now();
    v4c_tokenizer *tok = v4c_tokenizer_load(argv[1], err);
    double load_s = now() - t0;
    if (!tok) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 1;
    }
    json_t **chunks = NULL;
    size_t n_chunks = 0, total = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        chunks = realloc(chunks, (n_chunks + 1) * sizeof *chunks);
        chunks[n_chunks] = json_loads(line, 0, NULL);
        total += json_string_length(json_object_get(chunks[n_chunks++], "text"));
    }
    fclose(f);

    int32_t **ids = calloc(n_chunks, sizeof *ids);
    long *counts = calloc(n_chunks, sizeof *counts), n_tokens = 0;
    double best = 1e30;
    for (int pass = 0; pass < 3; pass++) {
        t0 = now();
        n_tokens = 0;
        for (size_t i = 0; i < n_chunks; i++) {
            json_t *text = json_object_get(chunks[i], "text");
            free(ids[i]);
            counts[i] = v4c_tokenize(tok, json_string_value(text), json_string_length(text), &ids[i], err);
            n_tokens += counts[i];
        }
        double s = now() - t0;
        if (s < best) best = s;
    }
    printf("c:  load %.3f s, %.2f MB, %ld tokens in %.3f s = %.2f MB/s\n", load_s, (double)total / 1e6, n_tokens,
           best, (double)total / 1e6 / best);

    int rc = 0;
    if (argc > 3) {
        FILE *js = fopen(argv[3], "r");
        size_t i = 0, mismatched = 0;
        while (js && i < n_chunks && getline(&line, &cap, js) > 0) {
            if (!same_ids(ids[i], counts[i], line)) {
                if (!mismatched) printf("first mismatch with JS ids: chunk %zu\n", i);
                mismatched++;
            }
            i++;
        }
        if (js) fclose(js);
        printf("ids identical to JS on %zu/%zu chunks\n", i - mismatched, n_chunks);
        rc = mismatched || i != n_chunks;
    }
    for (size_t i = 0; i < n_chunks; i++) {
        free(ids[i]);
        json_decref(chunks[i]);
    }
    free(ids);
    free(counts);
    free(chunks);
    free(line);
    v4c_tokenizer_free(tok);
    return rc;
}
