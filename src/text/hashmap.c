#include "text/hashmap.h"

#include <stdlib.h>
#include <string.h>

#include "text/buf.h"

/* FNV-1a over 8-byte words then a final mix: fast for short tokens. */
uint64_t text_hash_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    while (len--) h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p *= 2;
    return p;
}

void strmap_init(strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->n_slots = pow2_at_least(expected * 2);
    m->slots = xcalloc(m->n_slots, sizeof *m->slots);
}

void strmap_free(strmap *m) {
    free(m->slots);
    free(m->entries);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static size_t strmap_find(const strmap *m, const void *key, size_t len, uint64_t h) {
    size_t mask = m->n_slots - 1, i = (size_t)h & mask;
    for (;;) {
        uint32_t e = m->slots[i];
        if (!e) return i;
        const struct strmap_entry *en = &m->entries[e - 1];
        if (en->hash == h && en->key_len == len && !memcmp(m->arena + en->key_off, key, len)) return i;
        i = (i + 1) & mask;
    }
}

static void strmap_grow(strmap *m) {
    free(m->slots);
    m->n_slots *= 2;
    m->slots = xcalloc(m->n_slots, sizeof *m->slots);
    size_t mask = m->n_slots - 1;
    for (size_t e = 0; e < m->n_entries; e++) {
        size_t i = (size_t)m->entries[e].hash & mask;
        while (m->slots[i]) i = (i + 1) & mask;
        m->slots[i] = (uint32_t)(e + 1);
    }
}

void strmap_put(strmap *m, const void *key, size_t len, int32_t value) {
    uint64_t h = text_hash_bytes(key, len);
    size_t i = strmap_find(m, key, len, h);
    if (m->slots[i]) {
        m->entries[m->slots[i] - 1].value = value;
        return;
    }
    if (m->arena_len + len > m->arena_cap) {
        m->arena_cap = pow2_at_least(m->arena_len + len + 1024);
        m->arena = xrealloc(m->arena, m->arena_cap);
    }
    if (len) memcpy(m->arena + m->arena_len, key, len);
    if (m->n_entries == m->cap_entries) {
        m->cap_entries = m->cap_entries ? m->cap_entries * 2 : 64;
        m->entries = xrealloc(m->entries, m->cap_entries * sizeof *m->entries);
    }
    m->entries[m->n_entries] = (struct strmap_entry){h, m->arena_len, (uint32_t)len, value};
    m->arena_len += len;
    m->slots[i] = (uint32_t)++m->n_entries;
    if (m->n_entries * 2 > m->n_slots) strmap_grow(m);
}

int strmap_get(const strmap *m, const void *key, size_t len, int32_t *value) {
    size_t i = strmap_find(m, key, len, text_hash_bytes(key, len));
    if (!m->slots[i]) return 0;
    *value = m->entries[m->slots[i] - 1].value;
    return 1;
}

void pairmap_init(pairmap *m, size_t expected) {
    m->n_slots = pow2_at_least(expected * 2);
    m->n_used = 0;
    m->slots = xmalloc(m->n_slots * sizeof *m->slots);
    for (size_t i = 0; i < m->n_slots; i++) m->slots[i].key = UINT64_MAX;
}

void pairmap_free(pairmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static void pairmap_insert(pairmap *m, struct pairmap_slot s) {
    uint64_t h = s.key * 0x9E3779B97F4A7C15ull;
    size_t mask = m->n_slots - 1, i = (size_t)(h >> 32) & mask;
    while (m->slots[i].key != UINT64_MAX) {
        if (m->slots[i].key == s.key) return;
        i = (i + 1) & mask;
    }
    m->slots[i] = s;
    m->n_used++;
}

void pairmap_put(pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    if ((m->n_used + 1) * 2 > m->n_slots) {
        pairmap bigger;
        pairmap_init(&bigger, m->n_slots);
        for (size_t i = 0; i < m->n_slots; i++)
            if (m->slots[i].key != UINT64_MAX) pairmap_insert(&bigger, m->slots[i]);
        free(m->slots);
        *m = bigger;
    }
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    pairmap_insert(m, (struct pairmap_slot){key, rank, merged});
}
