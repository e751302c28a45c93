/* Golden tokenizer cases: each line of a cases.jsonl ({"text", "ids"})
 * must encode to exactly its ids, decode back to its text, and stream-decode
 * to the same text one id at a time.
 * usage: test_tokenizer tokenizer.json cases.jsonl */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "v4c_text.h"

static int check_case(const v4c_tokenizer *tok, json_t *c, int line) {
    char err[V4C_ERR_LEN];
    json_t *text_j = json_object_get(c, "text"), *ids_j = json_object_get(c, "ids");
    const char *text = json_string_value(text_j);
    size_t text_len = json_string_length(text_j), n_want = json_array_size(ids_j);
    int32_t *ids;
    long n = v4c_tokenize(tok, text, text_len, &ids, err);
    if (n < 0) {
        printf("line %d: encode failed: %s\n", line, err);
        return 1;
    }
    int bad = (size_t)n != n_want;
    for (long i = 0; !bad && i < n; i++) bad = ids[i] != json_integer_value(json_array_get(ids_j, (size_t)i));
    if (bad) {
        long i = 0;
        while (i < n && (size_t)i < n_want && ids[i] == json_integer_value(json_array_get(ids_j, (size_t)i))) i++;
        printf("line %d: ids differ at %ld (got %ld ids, want %zu): got %ld want %ld\n", line, i, n, n_want,
               i < n ? (long)ids[i] : -1L,
               (size_t)i < n_want ? (long)json_integer_value(json_array_get(ids_j, (size_t)i)) : -1L);
        free(ids);
        return 1;
    }
    size_t out_len;
    char *out = v4c_detokenize(tok, ids, (size_t)n, &out_len, err);
    int fail = !out || out_len != text_len || memcmp(out, text, text_len);
    if (fail) printf("line %d: decode does not round-trip\n", line);
    free(out);

    v4c_stream_decoder *d = v4c_stream_decoder_new(tok);
    char *streamed = calloc(1, text_len * 3 + 16);
    size_t pos = 0;
    for (long i = 0; i < n; i++) {
        const char *piece;
        long k = v4c_stream_decoder_push(d, ids[i], &piece, err);
        if (k < 0) break;
        memcpy(streamed + pos, piece, (size_t)k);
        pos += (size_t)k;
    }
    const char *piece;
    long k = v4c_stream_decoder_flush(d, &piece);
    memcpy(streamed + pos, piece, (size_t)k);
    pos += (size_t)k;
    if (pos != text_len || memcmp(streamed, text, text_len)) {
        printf("line %d: stream decode differs\n", line);
        fail = 1;
    }
    free(streamed);
    v4c_stream_decoder_free(d);
    free(ids);
    return fail;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s tokenizer.json cases.jsonl\n", argv[0]);
        return 2;
    }
    char err[V4C_ERR_LEN];
    clock_t t0 = clock();
    v4c_tokenizer *tok = v4c_tokenizer_load(argv[1], err);
    if (!tok) {
        printf("load: %s\n", err);
        return 1;
    }
    printf("loaded %s in %.3f s (%d ids)\n", argv[1], (double)(clock() - t0) / CLOCKS_PER_SEC,
           v4c_tokenizer_n_vocab(tok));
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        printf("cannot open %s\n", argv[2]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    int n_lines = 0, n_fail = 0;
    while (getline(&line, &cap, f) > 0) {
        n_lines++;
        json_error_t jerr;
        json_t *c = json_loads(line, JSON_ALLOW_NUL, &jerr);
        if (!c) {
            printf("line %d: bad JSON: %s\n", n_lines, jerr.text);
            n_fail++;
            continue;
        }
        n_fail += check_case(tok, c, n_lines);
        json_decref(c);
    }
    free(line);
    fclose(f);
    v4c_tokenizer_free(tok);
    printf("%d/%d cases OK\n", n_lines - n_fail, n_lines);
    return n_fail || n_lines == 0;
}
