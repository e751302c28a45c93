/* libFuzzer target: arbitrary bytes through the tokenizer. Invalid UTF-8
 * must be refused; valid text must decode back to itself, whole and
 * streamed; arbitrary ids must decode or be refused without a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v4c_text.h"

static v4c_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("V4C_FUZZ_TOKENIZER");
    char err[V4C_ERR_LEN];
    tok = v4c_tokenizer_load(path ? path : V4C_FUZZ_DEFAULT_TOKENIZER, err);
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[V4C_ERR_LEN];
    int32_t *ids;
    long n = v4c_tokenize(tok, (const char *)data, size, &ids, err);
    if (n >= 0) {
        size_t len;
        char *text = v4c_detokenize(tok, ids, (size_t)n, &len, err);
        if (!text || len != size || memcmp(text, data, size)) abort();
        free(text);

        v4c_stream_decoder *d = v4c_stream_decoder_new(tok);
        size_t pos = 0;
        const char *piece;
        for (long i = 0; i < n; i++) {
            long k = v4c_stream_decoder_push(d, ids[i], &piece, err);
            if (k < 0 || pos + (size_t)k > size || memcmp(data + pos, piece, (size_t)k)) abort();
            pos += (size_t)k;
        }
        long k = v4c_stream_decoder_flush(d, &piece);
        if (pos + (size_t)k != size || memcmp(data + pos, piece, (size_t)k)) abort();
        v4c_stream_decoder_free(d);
        free(ids);
    }
    /* The same bytes read as token ids. */
    size_t n_ids = size / 4;
    int32_t *raw = malloc((n_ids ? n_ids : 1) * sizeof *raw);
    memcpy(raw, data, n_ids * sizeof *raw);
    for (size_t i = 0; i < n_ids; i++) raw[i] %= v4c_tokenizer_n_vocab(tok) + 16;
    size_t len;
    free(v4c_detokenize(tok, raw, n_ids, &len, err));
    v4c_stream_decoder *d = v4c_stream_decoder_new(tok);
    const char *piece;
    for (size_t i = 0; i < n_ids; i++) v4c_stream_decoder_push(d, raw[i], &piece, err);
    v4c_stream_decoder_flush(d, &piece);
    v4c_stream_decoder_free(d);
    free(raw);
    return 0;
}
