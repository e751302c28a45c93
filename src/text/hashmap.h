/* Open-addressing hash maps used by the tokenizer: byte strings → int32
 * (vocabulary, added tokens, encode cache) and token pairs → merge. */
#ifndef V4C_TEXT_HASHMAP_H
#define V4C_TEXT_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

uint64_t text_hash_bytes(const void *data, size_t len);

/* Byte strings → int32. Keys are copied into the map's own arena. */
typedef struct {
    uint32_t *slots; /* entry index + 1, 0 = empty */
    size_t n_slots;  /* power of two */
    struct strmap_entry {
        uint64_t hash;
        size_t key_off;
        uint32_t key_len;
        int32_t value;
    } *entries;
    size_t n_entries, cap_entries;
    char *arena;
    size_t arena_len, arena_cap;
} strmap;

void strmap_init(strmap *m, size_t expected);
void strmap_free(strmap *m);
/* Inserts or overwrites. */
void strmap_put(strmap *m, const void *key, size_t len, int32_t value);
/* Returns 1 and sets *value when present. */
int strmap_get(const strmap *m, const void *key, size_t len, int32_t *value);

/* (left id, right id) → (merge rank, merged id). */
typedef struct {
    struct pairmap_slot {
        uint64_t key; /* left << 32 | right, UINT64_MAX = empty */
        int32_t rank, merged;
    } *slots;
    size_t n_slots, n_used;
} pairmap;

void pairmap_init(pairmap *m, size_t expected);
void pairmap_free(pairmap *m);
/* Keeps the first (lowest-rank) entry when a pair is repeated. */
void pairmap_put(pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
static inline const struct pairmap_slot *pairmap_get(const pairmap *m, int32_t left, int32_t right) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    size_t mask = m->n_slots - 1, i = (size_t)(h >> 32) & mask;
    for (;;) {
        const struct pairmap_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        i = (i + 1) & mask;
    }
}

#endif
