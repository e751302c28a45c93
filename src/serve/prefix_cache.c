/* The prefix cache: snapshots of recent sessions (after a prompt's prefill,
 * after a shared system prompt, after an answer), keyed by the token ids
 * they hold. A new prompt starts from a clone of the snapshot sharing its
 * longest prefix, rolled back by up to V4C_MAX_ROLLBACK tokens when the
 * match ends just short of the snapshot. Scheduler thread only. */
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "util/util.h"

typedef struct {
    v4c_session *s;
    unsigned long long used; /* LRU stamp */
} entry;

struct srv_prefix_cache {
    entry *e;
    int n, max;
    unsigned long long clock;
};

srv_prefix_cache *srv_prefix_cache_new(int max_entries) {
    srv_prefix_cache *c = xcalloc(1, sizeof *c);
    c->max = max_entries > 0 ? max_entries : 0;
    c->e = xcalloc(c->max ? (size_t)c->max : 1, sizeof(entry));
    return c;
}

void srv_prefix_cache_free(srv_prefix_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) v4c_session_free(c->e[i].s);
    free(c->e);
    free(c);
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

v4c_session *srv_prefix_cache_take(srv_prefix_cache *c, const int32_t *ids, int n, int *held) {
    *held = 0;
    int best = -1, best_lcp = 0;
    for (int i = 0; i < c->n; i++) {
        int pos = v4c_session_pos(c->e[i].s);
        int lcp = common_prefix(v4c_session_tokens(c->e[i].s), pos, ids, n);
        if (lcp > n - 1) lcp = n - 1;
        if (lcp < 1 || pos - lcp > V4C_MAX_ROLLBACK) continue;
        if (lcp > best_lcp) best = i, best_lcp = lcp;
    }
    if (best < 0) return NULL;
    c->e[best].used = ++c->clock;
    v4c_session *s = v4c_session_clone(c->e[best].s);
    int back = v4c_session_pos(s) - best_lcp;
    char err[V4C_ERR_LEN];
    if (back > 0 && v4c_session_rollback(s, back, err)) {
        v4c_session_free(s);
        return NULL;
    }
    *held = best_lcp;
    return s;
}

void srv_prefix_cache_put(srv_prefix_cache *c, v4c_session *s) {
    int pos = v4c_session_pos(s);
    if (!c->max || pos < 1) {
        v4c_session_free(s);
        return;
    }
    for (int i = 0; i < c->n; i++) /* the same tokens already cached */
        if (v4c_session_pos(c->e[i].s) == pos && !memcmp(v4c_session_tokens(c->e[i].s), v4c_session_tokens(s), (size_t)pos * sizeof(int32_t))) {
            c->e[i].used = ++c->clock;
            v4c_session_free(s);
            return;
        }
    if (c->n == c->max) { /* evict the least recently used */
        int lru = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[lru].used) lru = i;
        v4c_session_free(c->e[lru].s);
        c->e[lru] = c->e[--c->n];
    }
    c->e[c->n++] = (entry){s, ++c->clock};
}

int srv_prefix_cache_count(const srv_prefix_cache *c) { return c->n; }

long long srv_prefix_cache_tokens(const srv_prefix_cache *c) {
    long long t = 0;
    for (int i = 0; i < c->n; i++) t += v4c_session_pos(c->e[i].s);
    return t;
}
