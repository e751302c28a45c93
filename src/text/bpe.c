#include "text/bpe.h"

#include <stdlib.h>

void bpe_scratch_free(bpe_scratch *s) {
    free(s->symbols);
    free(s->heap);
    *s = (bpe_scratch){0};
}

static void heap_push(bpe_scratch *s, uint64_t key) {
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 64;
        s->heap = xrealloc(s->heap, s->cap_heap * sizeof *s->heap);
    }
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent] <= key) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = key;
}

static uint64_t heap_pop(bpe_scratch *s) {
    uint64_t top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && s->heap[c + 1] < s->heap[c]) c++;
        if (last <= s->heap[c]) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* Queues the pair starting at symbol `left` if it is a known merge. */
static void push_pair(const bpe_model *m, bpe_scratch *s, int32_t left) {
    if (left < 0) return;
    int32_t right = s->symbols[left].next;
    if (right < 0) return;
    const struct bpe_symbol *sym = s->symbols;
    const struct pairmap_slot *merge = pairmap_get(&m->merges, sym[left].id, sym[right].id);
    if (merge) heap_push(s, ((uint64_t)(uint32_t)merge->rank << 32) | (uint32_t)left);
}

void bpe_encode(const bpe_model *m, bpe_scratch *s, const unsigned char *bytes, size_t len, text_ids *out) {
    if (len == 1) {
        text_ids_push(out, m->byte_ids[bytes[0]]);
        return;
    }
    if (len > s->cap_symbols) {
        s->cap_symbols = len;
        s->symbols = xrealloc(s->symbols, len * sizeof *s->symbols);
    }
    struct bpe_symbol *sym = s->symbols;
    for (size_t i = 0; i < len; i++)
        sym[i] = (struct bpe_symbol){m->byte_ids[bytes[i]], (int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1};
    s->n_heap = 0;
    for (size_t i = 0; i + 1 < len; i++) push_pair(m, s, (int32_t)i);

    while (s->n_heap) {
        uint64_t key = heap_pop(s);
        int32_t rank = (int32_t)(key >> 32), left = (int32_t)(uint32_t)key;
        /* Entries go stale when a neighbour merged first: the pair at
         * `left` must still be the one this rank names. */
        int32_t right = sym[left].next;
        if (sym[left].id < 0 || right < 0) continue;
        const struct pairmap_slot *merge = pairmap_get(&m->merges, sym[left].id, sym[right].id);
        if (!merge || merge->rank != rank) continue;
        sym[left].id = merge->merged;
        sym[right].id = -1;
        sym[left].next = sym[right].next;
        if (sym[right].next >= 0) sym[sym[right].next].prev = left;
        push_pair(m, s, sym[left].prev);
        push_pair(m, s, left);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) text_ids_push(out, sym[i].id);
}
