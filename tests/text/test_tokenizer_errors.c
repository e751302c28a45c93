/* Tokenizer error paths and edge cases: unreadable or unsupported
 * tokenizer.json files are refused with a message, invalid UTF-8 and unknown
 * ids are errors, the streaming decoder never splits a character, and a
 * small hand-made tokenizer merges by rank (leftmost on ties).
 * usage: test_tokenizer_errors V4_TOKENIZER_JSON */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bytelevel.h"
#include "v4c_text.h"
#include "test_util.h"



/* A byte-level tokenizer: the 256 byte tokens (ids 0–255), then `extra`
 * merged tokens with their merges, plus one added token. */
static json_t *tiny_tokenizer(const char *const *merges, int n_merges) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        strbuf s = {0};
        unsigned cp = bytelevel_codepoint((unsigned char)b);
        char utf8[3] = {(char)cp, 0, 0};
        if (cp >= 0x80) {
            utf8[0] = (char)(0xC0 | (cp >> 6));
            utf8[1] = (char)(0x80 | (cp & 0x3F));
        }
        strbuf_puts(&s, utf8);
        json_object_set_new(vocab, s.data, json_integer(b));
        strbuf_free(&s);
    }
    json_t *merge_list = json_array();
    for (int i = 0; i < n_merges; i++) {
        json_array_append_new(merge_list, json_string(merges[i]));
        char merged[64];
        const char *space = strchr(merges[i], ' ');
        snprintf(merged, sizeof merged, "%.*s%s", (int)(space - merges[i]), merges[i], space + 1);
        if (!json_object_get(vocab, merged)) json_object_set_new(vocab, merged, json_integer(256 + i));
    }
    return json_pack("{s:{s:s, s:o, s:o}, s:[{s:i, s:s, s:b}], s:n, s:{s:s, s:b, s:b}}", "model", "type", "BPE",
                     "vocab", vocab, "merges", merge_list, "added_tokens", "id", 1000, "content", "<x>", "special", 0,
                     "normalizer", "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0, "use_regex", 1);
}

static void expect_load_error(json_t *root, const char *needle) {
    char err[V4C_ERR_LEN] = "";
    v4c_tokenizer *tok = v4c_tokenizer_load_json(root, err);
    CHECK(!tok && strstr(err, needle), "load: got '%s', want an error mentioning '%s'", err, needle);
    v4c_tokenizer_free(tok);
    json_decref(root);
}

static void expect_ids(const v4c_tokenizer *tok, const char *text, const int32_t *want, long n_want) {
    char err[V4C_ERR_LEN];
    int32_t *ids;
    long n = v4c_tokenize(tok, text, strlen(text), &ids, err);
    int same = n == n_want;
    for (long i = 0; same && i < n; i++) same = ids[i] == want[i];
    CHECK(same, "'%s' encodes to %ld ids, not the expected %ld", text, n, n_want);
    free(ids);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s V4_TOKENIZER_JSON\n", argv[0]);
        return 2;
    }
    char err[V4C_ERR_LEN];
    CHECK(!v4c_tokenizer_load("/nonexistent/tokenizer.json", err) && strstr(err, "/nonexistent/tokenizer.json"),
          "missing file: %s", err);

    /* Merges by rank: "b c" (rank 0) before "a b" (rank 1); "a a" ties go left. */
    const char *merges[] = {"b c", "a b", "a a", "aa a"};
    json_t *root = tiny_tokenizer(merges, 4);
    v4c_tokenizer *tiny = v4c_tokenizer_load_json(root, err);
    CHECK(tiny, "tiny tokenizer: %s", err);
    if (tiny) {
        expect_ids(tiny, "abc", (int32_t[]){'a', 256}, 2);        /* a + bc, not ab + c */
        expect_ids(tiny, "aaa", (int32_t[]){259}, 1);             /* (a a) a → aaa */
        expect_ids(tiny, "aaaa", (int32_t[]){258, 258}, 2);       /* aa aa */
        expect_ids(tiny, "ab<x>ab", (int32_t[]){257, 1000, 257}, 3); /* added token atomic */
        expect_ids(tiny, "", NULL, 0);
    }
    v4c_tokenizer_free(tiny);
    json_decref(root);

    root = tiny_tokenizer(merges, 4);
    json_object_set_new(json_object_get(root, "model"), "type", json_string("WordPiece"));
    expect_load_error(root, "BPE");
    root = tiny_tokenizer(merges, 4);
    json_object_set_new(root, "normalizer", json_pack("{s:s}", "type", "NFC"));
    expect_load_error(root, "normalizer 'NFC'");
    root = tiny_tokenizer(merges, 4);
    json_array_append_new(json_object_get(json_object_get(root, "model"), "merges"), json_string("zz q"));
    expect_load_error(root, "out of the vocabulary");
    root = tiny_tokenizer(merges, 4);
    json_object_set_new(root, "pre_tokenizer",
                        json_pack("{s:s, s:{s:s}, s:s}", "type", "Split", "pattern", "Regex", "(", "behavior", "Isolated"));
    expect_load_error(root, "regex");
    root = tiny_tokenizer(merges, 4);
    json_object_del(json_object_get(json_object_get(root, "model"), "vocab"), "a");
    expect_load_error(root, "byte 0x61");

    v4c_tokenizer *tok = v4c_tokenizer_load(argv[1], err);
    CHECK(tok, "%s", err);
    if (!tok) return 1;
    int32_t *ids;
    CHECK(v4c_tokenize(tok, "ab\xC3(", 4, &ids, err) < 0 && strstr(err, "byte 2"), "invalid UTF-8: %s", err);
    CHECK(v4c_tokenize(tok, "\xED\xA0\x80", 3, &ids, err) < 0, "a UTF-8 surrogate was accepted");
    size_t len;
    CHECK(!v4c_detokenize(tok, (int32_t[]){5, 99999999}, 2, &len, err) && strstr(err, "99999999"),
          "unknown id: %s", err);
    CHECK(v4c_tokenizer_token_id(tok, "<think>") == 128821 && v4c_tokenizer_is_added(tok, 128821),
          "<think> is added token 128821");
    CHECK(v4c_tokenizer_token_id(tok, "no such token text") == -1, "unknown token text has no id");

    /* Streaming: the three byte tokens of 中 come out as one character. */
    int32_t b0 = v4c_tokenizer_token_id(tok, "\xE4"), b1 = v4c_tokenizer_token_id(tok, "\xB8"),
            b2 = v4c_tokenizer_token_id(tok, "\xAD"), bad = v4c_tokenizer_token_id(tok, "\xFF");
    v4c_stream_decoder *d = v4c_stream_decoder_new(tok);
    const char *piece;
    CHECK(v4c_stream_decoder_push(d, b0, &piece, err) == 0, "released a partial character");
    CHECK(v4c_stream_decoder_push(d, b1, &piece, err) == 0, "released a partial character");
    CHECK(v4c_stream_decoder_push(d, b2, &piece, err) == 3 && !memcmp(piece, "中", 3), "did not release 中");
    CHECK(v4c_stream_decoder_push(d, bad, &piece, err) == 3 && !memcmp(piece, "\xEF\xBF\xBD", 3),
          "0xFF is not U+FFFD");
    CHECK(v4c_stream_decoder_push(d, b0, &piece, err) == 0, "held back");
    CHECK(v4c_stream_decoder_flush(d, &piece) == 3 && !memcmp(piece, "\xEF\xBF\xBD", 3),
          "an incomplete tail flushes as U+FFFD");
    CHECK(v4c_stream_decoder_push(d, -5, &piece, err) < 0, "negative id accepted");
    v4c_stream_decoder_free(d);
    v4c_tokenizer_free(tok);
    return test_done("test_tokenizer_errors");
}
