#include "train/bpe_train.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bytelevel.h"
#include "text/pretokenize.h"
#include "train/v4_special.h"
#include "util/util.h"

typedef struct {
    int *sym; /* token ids (bytes are 0..255) */
    int n;
    long count;
} word;

typedef struct {
    word *w;
    int n, cap;
    int *slots; /* open addressing over w, -1 empty */
    int n_slots;
} word_set;

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
    return h;
}

static int same_bytes(const word *w, const char *p, size_t n) {
    if ((size_t)w->n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (w->sym[i] != (uint8_t)p[i]) return 0;
    return 1;
}

static void grow(word_set *s) {
    int n_slots = s->n_slots ? 2 * s->n_slots : 1 << 16;
    int *slots = xmalloc((size_t)n_slots * sizeof(int));
    for (int i = 0; i < n_slots; i++) slots[i] = -1;
    for (int i = 0; i < s->n; i++) {
        char buf[4096];
        int n = s->w[i].n < 4096 ? s->w[i].n : 4096;
        for (int k = 0; k < n; k++) buf[k] = (char)s->w[i].sym[k];
        uint64_t h = hash_bytes(buf, (size_t)n) & (uint64_t)(n_slots - 1);
        while (slots[h] >= 0) h = (h + 1) & (uint64_t)(n_slots - 1);
        slots[h] = i;
    }
    free(s->slots);
    s->slots = slots;
    s->n_slots = n_slots;
}

static void count_piece(void *ctx, const char *piece, size_t len) {
    word_set *s = ctx;
    if (len == 0 || len > 4096) return;
    if (2 * (s->n + 1) > s->n_slots) grow(s);
    uint64_t h = hash_bytes(piece, len) & (uint64_t)(s->n_slots - 1);
    while (s->slots[h] >= 0) {
        word *w = &s->w[s->slots[h]];
        if (same_bytes(w, piece, len)) {
            w->count++;
            return;
        }
        h = (h + 1) & (uint64_t)(s->n_slots - 1);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->w = xrealloc(s->w, (size_t)s->cap * sizeof(word));
    }
    word *w = &s->w[s->n];
    w->sym = xmalloc(len * sizeof(int));
    for (size_t i = 0; i < len; i++) w->sym[i] = (uint8_t)piece[i];
    w->n = (int)len;
    w->count = 1;
    s->slots[h] = s->n++;
}

/* Pair counts in an open-addressing table keyed by (a << 32 | b). */
typedef struct {
    uint64_t *key;
    long *count;
    size_t mask;
} pair_table;

static void pair_add(pair_table *t, uint64_t key, long c) {
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & t->mask;
    while (t->key[h] != UINT64_MAX && t->key[h] != key) h = (h + 1) & t->mask;
    t->key[h] = key;
    t->count[h] += c;
}

/* byte-level form of a token's bytes (GPT-2 mapping) */
static char *token_text(const uint8_t *bytes, int n) {
    char *out = xmalloc((size_t)n * 2 + 1), *p = out;
    for (int i = 0; i < n; i++) {
        uint32_t cp = bytelevel_codepoint(bytes[i]);
        if (cp < 0x80) *p++ = (char)cp;
        else {
            *p++ = (char)(0xC0 | (cp >> 6));
            *p++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *p = 0;
    return out;
}

int bpe_train(const char *corpus_path, int vocab_size, const char *out_path, char *err) {
    int n_special = (int)(sizeof v4_special_tokens / sizeof v4_special_tokens[0]);
    if (vocab_size < n_special + 256 + 1) return v4c_fail(err, "--vocab %d: need more than %d (special tokens + 256 bytes)", vocab_size, n_special + 256);
    size_t len;
    char *text = read_file(corpus_path, &len, err);
    if (!text) return -1;
    json_error_t jerr;
    json_t *pre = json_loads(v4_pre_tokenizer_json, 0, &jerr);
    pretokenizer pt;
    pretokenizer_init(&pt);
    json_t *steps = json_object_get(pre, "pretokenizers"), *step;
    size_t si;
    json_array_foreach(steps, si, step) {
        if (strcmp(json_string_value(json_object_get(step, "type")), "Split")) continue;
        const char *re = json_string_value(json_object_get(json_object_get(step, "pattern"), "Regex"));
        if (pretokenizer_add_split(&pt, re, strlen(re), SPLIT_ISOLATED, 0, err)) {
            pretokenizer_free(&pt);
            json_decref(pre);
            free(text);
            return -1;
        }
    }
    word_set ws = {0};
    grow(&ws);
    pretok_scratch scratch;
    pretok_scratch_init(&scratch);
    pretokenizer_run(&pt, &scratch, text, len, count_piece, &ws);
    int perr = scratch.error;
    pretok_scratch_free(&scratch);
    pretokenizer_free(&pt);
    free(text);
    if (perr) {
        json_decref(pre);
        return v4c_fail(err, "%s: pre-tokenization failed (is it UTF-8?)", corpus_path);
    }

    int n_merges = vocab_size - n_special - 256;
    int (*merges)[2] = xmalloc((size_t)n_merges * sizeof *merges);
    uint8_t **tok_bytes = xcalloc((size_t)256 + n_merges, sizeof(uint8_t *));
    int *tok_len = xcalloc((size_t)256 + n_merges, sizeof(int));
    for (int b = 0; b < 256; b++) {
        tok_bytes[b] = xmalloc(1);
        tok_bytes[b][0] = (uint8_t)b;
        tok_len[b] = 1;
    }
    pair_table pt2;
    pt2.mask = (1u << 21) - 1;
    pt2.key = xmalloc((pt2.mask + 1) * sizeof(uint64_t));
    pt2.count = xmalloc((pt2.mask + 1) * sizeof(long));
    int done = 0;
    for (; done < n_merges; done++) {
        memset(pt2.key, 0xff, (pt2.mask + 1) * sizeof(uint64_t));
        memset(pt2.count, 0, (pt2.mask + 1) * sizeof(long));
        for (int i = 0; i < ws.n; i++)
            for (int k = 0; k + 1 < ws.w[i].n; k++) pair_add(&pt2, (uint64_t)ws.w[i].sym[k] << 32 | (uint32_t)ws.w[i].sym[k + 1], ws.w[i].count);
        uint64_t best = UINT64_MAX;
        long best_count = 1;
        for (size_t h = 0; h <= pt2.mask; h++)
            if (pt2.key[h] != UINT64_MAX && (pt2.count[h] > best_count || (pt2.count[h] == best_count && best != UINT64_MAX && pt2.key[h] < best))) {
                best = pt2.key[h];
                best_count = pt2.count[h];
            }
        if (best == UINT64_MAX) break; /* no pair occurs twice */
        int a = (int)(best >> 32), b = (int)(best & 0xffffffffu), id = 256 + done;
        merges[done][0] = a;
        merges[done][1] = b;
        tok_len[id] = tok_len[a] + tok_len[b];
        tok_bytes[id] = xmalloc((size_t)tok_len[id]);
        memcpy(tok_bytes[id], tok_bytes[a], (size_t)tok_len[a]);
        memcpy(tok_bytes[id] + tok_len[a], tok_bytes[b], (size_t)tok_len[b]);
        for (int i = 0; i < ws.n; i++) {
            word *w = &ws.w[i];
            int o = 0;
            for (int k = 0; k < w->n; k++) {
                if (k + 1 < w->n && w->sym[k] == a && w->sym[k + 1] == b) {
                    w->sym[o++] = id;
                    k++;
                } else {
                    w->sym[o++] = w->sym[k];
                }
            }
            w->n = o;
        }
    }

    /* tokenizer.json: specials first (BOS 0, EOS 1), then bytes, then merges */
    json_t *vocab = json_object(), *jmerges = json_array(), *added = json_array();
    for (int i = 0; i < n_special; i++) {
        json_object_set_new(vocab, v4_special_tokens[i], json_integer(i));
        json_array_append_new(added, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", i, "content", v4_special_tokens[i], "single_word", 0, "lstrip", 0,
                                               "rstrip", 0, "normalized", 0, "special", 1));
    }
    for (int t = 0; t < 256 + done; t++) {
        char *s = token_text(tok_bytes[t], tok_len[t]);
        json_object_set_new(vocab, s, json_integer(n_special + t));
        free(s);
    }
    for (int k = 0; k < done; k++) {
        char *a = token_text(tok_bytes[merges[k][0]], tok_len[merges[k][0]]), *b = token_text(tok_bytes[merges[k][1]], tok_len[merges[k][1]]);
        char *ab = xmalloc(strlen(a) + strlen(b) + 2);
        sprintf(ab, "%s %s", a, b);
        json_array_append_new(jmerges, json_string(ab));
        free(ab);
        free(a);
        free(b);
    }
    json_t *root = json_pack("{s:s,s:n,s:n,s:o,s:{s:s,s:[]},s:o,s:{s:s,s:b,s:b,s:b},s:{s:s,s:b,s:b,s:b},s:{s:s,s:n,s:n,s:n,s:n,s:b,s:b,s:o,s:o}}",
                             "version", "1.0", "truncation", "padding", "added_tokens", added, "normalizer", "type", "Sequence", "normalizers",
                             "pre_tokenizer", pre, "post_processor", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0, "use_regex", 1,
                             "decoder", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1, "use_regex", 1, "model", "type", "BPE",
                             "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0, "vocab",
                             vocab, "merges", jmerges);
    int rc = 0;
    if (!root) rc = v4c_fail(err, "internal error building tokenizer.json");
    else if (json_dump_file(root, out_path, JSON_COMPACT | JSON_ENSURE_ASCII)) rc = v4c_fail(err, "%s: cannot write", out_path);
    if (!rc) fprintf(stderr, "tokenizer: %d merges, vocabulary %d (%d special), %d distinct pieces\n", done, n_special + 256 + done, n_special, ws.n);
    json_decref(root);
    free(pt2.key);
    free(pt2.count);
    for (int t = 0; t < 256 + n_merges; t++) free(tok_bytes[t]);
    free(tok_bytes);
    free(tok_len);
    free(merges);
    for (int i = 0; i < ws.n; i++) free(ws.w[i].sym);
    free(ws.w);
    free(ws.slots);
    return rc;
}
