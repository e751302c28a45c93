/* Loading a Hugging Face tokenizer.json: the BPE vocabulary and merges, the
 * added tokens, and the pre-tokenizer steps. Anything this tokenizer would
 * not reproduce faithfully (normalizers, prefix spaces, other models) is
 * refused with an error rather than approximated. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bytelevel.h"
#include "text/tokenizer_internal.h"

/* The ByteLevel pre-tokenizer's own regex (GPT-2), used when use_regex. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    int32_t id;
    size_t off;
    uint32_t len;
    int added;
} token_def;

/* Collected while reading, turned into the id-indexed tables at the end. */
typedef struct {
    token_def *defs;
    size_t n, cap;
    strbuf blob;
} token_table;

static void table_add(token_table *t, int32_t id, const char *bytes, size_t len, int added) {
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->defs = xrealloc(t->defs, t->cap * sizeof *t->defs);
    }
    t->defs[t->n++] = (token_def){id, t->blob.len, (uint32_t)len, added};
    strbuf_append(&t->blob, bytes, len);
}

static int load_vocab(v4c_tokenizer *tok, json_t *vocab, token_table *table, char *err) {
    if (!json_is_object(vocab)) {
        snprintf(err, V4C_ERR_LEN, "tokenizer.json: model.vocab is not an object");
        return -1;
    }
    strmap_init(&tok->ids_by_text, json_object_size(vocab) + 2048);
    strbuf bytes = {0};
    const char *key;
    json_t *value;
    json_object_foreach(vocab, key, value) {
        json_int_t id = json_integer_value(value);
        if (!json_is_integer(value) || id < 0 || id > INT32_MAX - 1) {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: vocab entry '%.100s' has no valid id", key);
            strbuf_free(&bytes);
            return -1;
        }
        bytes.len = 0;
        bytelevel_decode(key, strlen(key), &bytes);
        table_add(table, (int32_t)id, bytes.data, bytes.len, 0);
        strmap_put(&tok->ids_by_text, bytes.data, bytes.len, (int32_t)id);
    }
    strbuf_free(&bytes);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (!strmap_get(&tok->ids_by_text, &c, 1, &tok->bpe.byte_ids[b])) {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: no token for byte 0x%02x (not a byte-level vocabulary)", b);
            return -1;
        }
    }
    return 0;
}

/* A merge is "A B" (older files) or ["A", "B"]. */
static int merge_halves(json_t *merge, const char **a, size_t *a_len, const char **b, size_t *b_len) {
    if (json_is_string(merge)) {
        const char *s = json_string_value(merge), *space = strchr(s, ' ');
        if (!space || strchr(space + 1, ' ')) return -1;
        *a = s;
        *a_len = (size_t)(space - s);
        *b = space + 1;
        *b_len = strlen(space + 1);
        return 0;
    }
    if (json_is_array(merge) && json_array_size(merge) == 2 && json_is_string(json_array_get(merge, 0)) &&
        json_is_string(json_array_get(merge, 1))) {
        *a = json_string_value(json_array_get(merge, 0));
        *a_len = json_string_length(json_array_get(merge, 0));
        *b = json_string_value(json_array_get(merge, 1));
        *b_len = json_string_length(json_array_get(merge, 1));
        return 0;
    }
    return -1;
}

static int load_merges(v4c_tokenizer *tok, json_t *merges, char *err) {
    if (!json_is_array(merges)) {
        snprintf(err, V4C_ERR_LEN, "tokenizer.json: model.merges is not an array");
        return -1;
    }
    pairmap_init(&tok->bpe.merges, json_array_size(merges));
    strbuf left = {0}, right = {0};
    int rc = 0;
    size_t rank;
    json_t *merge;
    json_array_foreach(merges, rank, merge) {
        const char *a, *b;
        size_t a_len, b_len;
        int32_t a_id, b_id, merged_id;
        if (merge_halves(merge, &a, &a_len, &b, &b_len)) {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: merge %zu is not \"A B\" or [A, B]", rank);
            rc = -1;
            break;
        }
        left.len = right.len = 0;
        bytelevel_decode(a, a_len, &left);
        bytelevel_decode(b, b_len, &right);
        strbuf_append(&left, "", 0);
        int found = strmap_get(&tok->ids_by_text, left.data, left.len, &a_id) &&
                    strmap_get(&tok->ids_by_text, right.data ? right.data : "", right.len, &b_id);
        strbuf_append(&left, right.data, right.len);
        if (!found || !strmap_get(&tok->ids_by_text, left.data, left.len, &merged_id)) {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: merge %zu ('%.60s' + '%.60s') is out of the vocabulary", rank,
                     a, b);
            rc = -1;
            break;
        }
        pairmap_put(&tok->bpe.merges, a_id, b_id, (int32_t)rank, merged_id);
    }
    strbuf_free(&left);
    strbuf_free(&right);
    return rc;
}

static int load_added(v4c_tokenizer *tok, json_t *added, token_table *table, char *err) {
    added_trie_init(&tok->added);
    if (!added || json_is_null(added)) return 0;
    if (!json_is_array(added)) {
        snprintf(err, V4C_ERR_LEN, "tokenizer.json: added_tokens is not an array");
        return -1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(added, i, t) {
        json_t *id = json_object_get(t, "id"), *content = json_object_get(t, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX - 1 ||
            !json_is_string(content) || json_string_length(content) == 0) {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: added_tokens[%zu] needs an id and non-empty content", i);
            return -1;
        }
        const char *text = json_string_value(content);
        size_t len = json_string_length(content);
        int32_t token_id = (int32_t)json_integer_value(id);
        table_add(table, token_id, text, len, 1);
        added_trie_add(&tok->added, text, len, token_id);
        strmap_put(&tok->ids_by_text, text, len, token_id);
    }
    return 0;
}

static int check_normalizer(json_t *norm, char *err) {
    if (!norm || json_is_null(norm)) return 0;
    const char *type = json_string_value(json_object_get(norm, "type"));
    json_t *list = json_object_get(norm, "normalizers");
    if (type && !strcmp(type, "Sequence") && json_is_array(list) && json_array_size(list) == 0) return 0;
    snprintf(err, V4C_ERR_LEN, "tokenizer.json: normalizer '%s' is not supported", type ? type : "?");
    return -1;
}

static int add_pretokenizer(v4c_tokenizer *tok, json_t *step, char *err) {
    const char *type = json_string_value(json_object_get(step, "type"));
    if (!type) type = "?";
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *sub;
        json_array_foreach(json_object_get(step, "pretokenizers"), i, sub) if (add_pretokenizer(tok, sub, err)) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (json_is_true(json_object_get(step, "add_prefix_space"))) {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: ByteLevel add_prefix_space is not supported");
            return -1;
        }
        /* Bytes are mapped by the BPE itself; only the optional regex splits. */
        if (!json_is_true(json_object_get(step, "use_regex"))) return 0;
        return pretokenizer_add_split(&tok->pre, gpt2_pattern, strlen(gpt2_pattern), SPLIT_ISOLATED, 0, err);
    }
    if (!strcmp(type, "Split")) {
        json_t *pattern = json_object_get(step, "pattern");
        const char *behavior = json_string_value(json_object_get(step, "behavior"));
        json_t *regex = json_object_get(pattern, "Regex"), *literal = json_object_get(pattern, "String");
        split_behavior how;
        if (behavior && !strcmp(behavior, "Isolated")) how = SPLIT_ISOLATED;
        else if (behavior && !strcmp(behavior, "Removed")) how = SPLIT_REMOVED;
        else {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: Split behavior '%s' is not supported",
                     behavior ? behavior : "?");
            return -1;
        }
        int invert = json_is_true(json_object_get(step, "invert"));
        if (json_is_string(regex))
            return pretokenizer_add_split(&tok->pre, json_string_value(regex), json_string_length(regex), how, invert,
                                          err);
        if (json_is_string(literal)) {
            /* \Q…\E quotes the literal; a literal "\E" is spliced around. */
            strbuf quoted = {0};
            const char *s = json_string_value(literal);
            strbuf_puts(&quoted, "\\Q");
            for (size_t i = 0; i < json_string_length(literal); i++) {
                if (s[i] == '\\' && s[i + 1] == 'E') {
                    strbuf_puts(&quoted, "\\E\\\\\\Q");
                    continue;
                }
                strbuf_putc(&quoted, s[i]);
            }
            strbuf_puts(&quoted, "\\E");
            int rc = pretokenizer_add_split(&tok->pre, quoted.data, quoted.len, how, invert, err);
            strbuf_free(&quoted);
            return rc;
        }
        snprintf(err, V4C_ERR_LEN, "tokenizer.json: Split pattern needs Regex or String");
        return -1;
    }
    snprintf(err, V4C_ERR_LEN, "tokenizer.json: pre-tokenizer '%s' is not supported", type);
    return -1;
}

static void build_tables(v4c_tokenizer *tok, token_table *table) {
    int32_t n = 0;
    for (size_t i = 0; i < table->n; i++)
        if (table->defs[i].id + 1 > n) n = table->defs[i].id + 1;
    tok->n_vocab = n;
    tok->tok_off = xcalloc((size_t)n, sizeof *tok->tok_off);
    tok->tok_len = xmalloc((size_t)n * sizeof *tok->tok_len);
    tok->is_added = xcalloc((size_t)n, 1);
    for (int32_t i = 0; i < n; i++) tok->tok_len[i] = UINT32_MAX;
    /* Added tokens come last in the table, so their text wins for ids that
     * are in both (BOS/EOS/pad). */
    for (size_t i = 0; i < table->n; i++) {
        const token_def *d = &table->defs[i];
        tok->tok_off[d->id] = d->off;
        tok->tok_len[d->id] = d->len;
        if (d->added) tok->is_added[d->id] = 1;
    }
    tok->blob = strbuf_take(&table->blob, NULL);
}

v4c_tokenizer *v4c_tokenizer_load_json(const json_t *root_c, char *err) {
    json_t *root = (json_t *)root_c; /* Jansson's getters take non-const */
    json_t *model = json_object_get(root, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(model) || (type && strcmp(type, "BPE"))) {
        snprintf(err, V4C_ERR_LEN, "tokenizer.json: model must be BPE (got '%s')", type ? type : "none");
        return NULL;
    }
    const char *unsupported[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 2; i++)
        if (json_is_string(json_object_get(model, unsupported[i])) &&
            json_string_length(json_object_get(model, unsupported[i]))) {
            snprintf(err, V4C_ERR_LEN, "tokenizer.json: model.%s is not supported", unsupported[i]);
            return NULL;
        }
    v4c_tokenizer *tok = xcalloc(1, sizeof *tok);
    pretokenizer_init(&tok->pre);
    token_table table = {0};
    json_t *pre = json_object_get(root, "pre_tokenizer");
    int rc = load_vocab(tok, json_object_get(model, "vocab"), &table, err);
    if (!rc) rc = load_merges(tok, json_object_get(model, "merges"), err);
    if (!rc) rc = load_added(tok, json_object_get(root, "added_tokens"), &table, err);
    if (!rc) rc = check_normalizer(json_object_get(root, "normalizer"), err);
    if (!rc && pre && !json_is_null(pre)) rc = add_pretokenizer(tok, pre, err);
    if (!rc) build_tables(tok, &table);
    free(table.defs);
    strbuf_free(&table.blob);
    if (rc) {
        v4c_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

v4c_tokenizer *v4c_tokenizer_load(const char *path, char *err) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        snprintf(err, V4C_ERR_LEN, "%s:%d: %s", path, jerr.line, jerr.text);
        return NULL;
    }
    v4c_tokenizer *tok = v4c_tokenizer_load_json(root, err);
    json_decref(root);
    return tok;
}

void v4c_tokenizer_free(v4c_tokenizer *tok) {
    if (!tok) return;
    pairmap_free(&tok->bpe.merges);
    pretokenizer_free(&tok->pre);
    added_trie_free(&tok->added);
    strmap_free(&tok->ids_by_text);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->is_added);
    free(tok->blob);
    free(tok);
}
