/* Encoding and decoding with a loaded tokenizer (loading: tokenizer_load.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_internal.h"
#include "text/utf8.h"

/* Pieces up to this length are remembered per call: natural text repeats
 * its words, and a hit skips the whole merge loop. */
#define CACHE_MAX_PIECE 48
#define CACHE_MAX_ENTRIES (1u << 16)

typedef struct {
    const v4c_tokenizer *tok;
    text_ids *out;
    bpe_scratch bpe;
    pretok_scratch pre;
    strmap cache;      /* piece → offset into cache_ids */
    text_ids cache_ids; /* per entry: count, then the ids */
} encode_ctx;

static void encode_piece(void *opaque, const char *piece, size_t len) {
    encode_ctx *c = opaque;
    int32_t off;
    if (len <= CACHE_MAX_PIECE && strmap_get(&c->cache, piece, len, &off)) {
        text_ids_append(c->out, c->cache_ids.data + off + 1, (size_t)c->cache_ids.data[off]);
        return;
    }
    size_t start = c->out->len;
    bpe_encode(&c->tok->bpe, &c->bpe, (const unsigned char *)piece, len, c->out);
    if (len <= CACHE_MAX_PIECE && c->cache.n_entries < CACHE_MAX_ENTRIES) {
        size_t n = c->out->len - start;
        strmap_put(&c->cache, piece, len, (int32_t)c->cache_ids.len);
        text_ids_push(&c->cache_ids, (int32_t)n);
        text_ids_append(&c->cache_ids, c->out->data + start, n);
    }
}

long v4c_tokenize(const v4c_tokenizer *tok, const char *text, size_t len, int32_t **ids, char *err) {
    size_t bad = utf8_valid_prefix(text, len);
    if (bad != len) {
        snprintf(err, V4C_ERR_LEN, "invalid UTF-8 at byte %zu", bad);
        return -1;
    }
    text_ids out = {0};
    encode_ctx c = {.tok = tok, .out = &out};
    pretok_scratch_init(&c.pre);
    strmap_init(&c.cache, 256);

    size_t pos = 0;
    while (pos < len) {
        size_t match_len;
        int32_t id;
        size_t start = added_trie_find(&tok->added, text, len, pos, &match_len, &id);
        if (start > pos) pretokenizer_run(&tok->pre, &c.pre, text + pos, start - pos, encode_piece, &c);
        if (c.pre.error) break;
        if (!match_len) break;
        text_ids_push(&out, id);
        pos = start + match_len;
    }

    int regex_error = c.pre.error;
    pretok_scratch_free(&c.pre);
    bpe_scratch_free(&c.bpe);
    strmap_free(&c.cache);
    text_ids_free(&c.cache_ids);
    if (regex_error) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(regex_error, msg, sizeof msg);
        snprintf(err, V4C_ERR_LEN, "pre-tokenizer regex failed after byte %zu: %s", pos, (const char *)msg);
        text_ids_free(&out);
        return -1;
    }
    *ids = out.data ? out.data : xmalloc(sizeof(int32_t));
    return (long)out.len;
}

const char *v4c_tokenizer_token_bytes(const v4c_tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->n_vocab || tok->tok_len[id] == UINT32_MAX) return NULL;
    *len = tok->tok_len[id];
    return tok->blob + tok->tok_off[id];
}

char *v4c_detokenize(const v4c_tokenizer *tok, const int32_t *ids, size_t n, size_t *len, char *err) {
    strbuf out = {0};
    for (size_t i = 0; i < n; i++) {
        size_t piece_len;
        const char *piece = v4c_tokenizer_token_bytes(tok, ids[i], &piece_len);
        if (!piece) {
            snprintf(err, V4C_ERR_LEN, "unknown token id %ld at position %zu", (long)ids[i], i);
            strbuf_free(&out);
            return NULL;
        }
        strbuf_append(&out, piece, piece_len);
    }
    return strbuf_take(&out, len);
}

int32_t v4c_tokenizer_n_vocab(const v4c_tokenizer *tok) { return tok->n_vocab; }

int32_t v4c_tokenizer_token_id(const v4c_tokenizer *tok, const char *text) {
    int32_t id;
    return strmap_get(&tok->ids_by_text, text, strlen(text), &id) ? id : -1;
}

int v4c_tokenizer_is_added(const v4c_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->n_vocab && tok->is_added[id];
}
