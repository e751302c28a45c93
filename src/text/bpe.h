/* Byte-pair encoding of one pre-tokenized piece: start from one token per
 * byte and apply merges lowest rank first (leftmost on ties), with a heap
 * over adjacent pairs — O(n log n) in the piece length. */
#ifndef V4C_TEXT_BPE_H
#define V4C_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "text/buf.h"
#include "text/hashmap.h"

typedef struct {
    pairmap merges;        /* (left, right) → (rank, merged id) */
    int32_t byte_ids[256]; /* the single-byte tokens */
} bpe_model;

/* Reusable per-call buffers. */
typedef struct {
    struct bpe_symbol {
        int32_t id; /* -1 once merged into its left neighbour */
        int32_t prev, next;
    } *symbols;
    size_t cap_symbols;
    uint64_t *heap; /* rank << 32 | position of the pair's left symbol */
    size_t n_heap, cap_heap;
} bpe_scratch;

void bpe_scratch_free(bpe_scratch *s);

/* Appends the ids of bytes[0..len) to out. */
void bpe_encode(const bpe_model *m, bpe_scratch *s, const unsigned char *bytes, size_t len, text_ids *out);

#endif
