#include "text/added_tokens.h"

#include <stdlib.h>
#include <string.h>

#include "text/buf.h"

static int32_t new_node(added_trie *t, unsigned char byte) {
    if (t->n_nodes == t->cap_nodes) {
        t->cap_nodes = t->cap_nodes ? t->cap_nodes * 2 : 256;
        t->nodes = xrealloc(t->nodes, t->cap_nodes * sizeof *t->nodes);
    }
    t->nodes[t->n_nodes] = (struct added_node){-1, -1, -1, byte};
    return (int32_t)t->n_nodes++;
}

void added_trie_init(added_trie *t) {
    memset(t, 0, sizeof *t);
    new_node(t, 0); /* root */
}

void added_trie_free(added_trie *t) {
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

static int32_t child(const added_trie *t, int32_t node, unsigned char byte) {
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling)
        if (t->nodes[c].byte == byte) return c;
    return -1;
}

void added_trie_add(added_trie *t, const char *content, size_t len, int32_t id) {
    if (len == 0) return;
    int32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)content[i];
        int32_t c = child(t, node, b);
        if (c < 0) {
            c = new_node(t, b);
            t->nodes[c].next_sibling = t->nodes[node].first_child;
            t->nodes[node].first_child = c;
        }
        node = c;
    }
    t->nodes[node].token_id = id;
    t->can_start[(unsigned char)content[0]] = 1;
}

size_t added_trie_match(const added_trie *t, const char *s, size_t avail, int32_t *id) {
    size_t best = 0;
    int32_t node = 0;
    for (size_t i = 0; i < avail; i++) {
        node = child(t, node, (unsigned char)s[i]);
        if (node < 0) break;
        if (t->nodes[node].token_id >= 0) {
            best = i + 1;
            *id = t->nodes[node].token_id;
        }
    }
    return best;
}

size_t added_trie_find(const added_trie *t, const char *s, size_t len, size_t from, size_t *match_len,
                       int32_t *id) {
    for (size_t i = from; i < len; i++) {
        if (!t->can_start[(unsigned char)s[i]]) continue;
        size_t n = added_trie_match(t, s + i, len - i, id);
        if (n) {
            *match_len = n;
            return i;
        }
    }
    *match_len = 0;
    return len;
}
