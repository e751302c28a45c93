/* Per-layer decode state (MODEL.md §7): the sliding-window ring of raw kv,
 * and for compressed layers the compressor tail and the entries so far. */
#ifndef V4C_CACHE_H
#define V4C_CACHE_H

/* Decode can take back the last V4C_MAX_ROLLBACK tokens (a rejected
 * speculative draft), plus one more position for the MTP block, which
 * trails the main model. The caches keep enough history for that. */
#include "v4c.h" /* V4C_MAX_ROLLBACK */

#define CACHE_SPARE (V4C_MAX_ROLLBACK + 1)
/* Compressor block slots: the current block, the previous one (overlap)
 * and enough spares that rolling back across block boundaries (ratio >= 2)
 * never loses rows still needed. */
#define COMPRESSOR_SLOTS 4

typedef struct {
    int ratio, dim, width;  /* m, d, c*d */
    /* k_t and s_t of recent blocks, [COMPRESSOR_SLOTS][m][width]: block b
     * in slot b % COMPRESSOR_SLOTS (the overlapping compressor pools block
     * b-1's first halves too). */
    float *k, *s;
    float *entries;         /* [cap][dim] finished entries c_0, c_1, ... */
    int n_entries, cap;
} compressor_cache;

typedef struct {
    float *kv_ring;         /* [ring][head_dim]: position p at p % ring */
    int ring;               /* window + CACHE_SPARE */
    compressor_cache comp;  /* main attention (ratio > 0) */
    compressor_cache icomp; /* lightning indexer (ratio == 4) */
} layer_cache;

void compressor_cache_init(compressor_cache *c, int ratio, int dim, int width);
void compressor_cache_free(compressor_cache *c);
float *compressor_cache_push(compressor_cache *c); /* room for one more entry */

void layer_cache_init(layer_cache *lc, int window, int head_dim, int ratio, int index_dim);
void layer_cache_free(layer_cache *lc);
/* Forget every position >= pos (at most CACHE_SPARE back). */
void layer_cache_truncate(layer_cache *lc, int pos);

#endif
