/* Added (special and non-special) tokens, matched atomically in raw text
 * before pre-tokenization: leftmost, then longest, over a byte trie. */
#ifndef V4C_TEXT_ADDED_TOKENS_H
#define V4C_TEXT_ADDED_TOKENS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    struct added_node {
        int32_t first_child, next_sibling; /* node indices, -1 = none */
        int32_t token_id;                  /* -1 when no token ends here */
        unsigned char byte;
    } *nodes;
    size_t n_nodes, cap_nodes;
    unsigned char can_start[256]; /* first bytes of some token */
} added_trie;

void added_trie_init(added_trie *t);
void added_trie_free(added_trie *t);
void added_trie_add(added_trie *t, const char *content, size_t len, int32_t id);

/* Length of the longest token that s[0..avail) starts with (0 if none);
 * its id goes to *id. */
size_t added_trie_match(const added_trie *t, const char *s, size_t avail, int32_t *id);

/* Offset of the leftmost token start at or after `from` (len if none),
 * with the matched length and id. */
size_t added_trie_find(const added_trie *t, const char *s, size_t len, size_t from, size_t *match_len,
                       int32_t *id);

#endif
