/* Per-layer decode state (MODEL.md §7): the sliding-window ring of raw kv,
 * and for compressed layers the compressor tail and the entries so far. */
#ifndef V4C_CACHE_H
#define V4C_CACHE_H

typedef struct {
    int ratio, dim, width;  /* m, d, c*d */
    /* k_t and s_t of the last two blocks, [2][m][width]: block b in slot b&1
     * (the overlapping compressor pools block b-1's first halves too). */
    float *k, *s;
    float *entries;         /* [cap][dim] finished entries c_0, c_1, ... */
    int n_entries, cap;
} compressor_cache;

typedef struct {
    float *kv_ring;         /* [window][head_dim]: position p at p % window */
    compressor_cache comp;  /* main attention (ratio > 0) */
    compressor_cache icomp; /* lightning indexer (ratio == 4) */
} layer_cache;

void compressor_cache_init(compressor_cache *c, int ratio, int dim, int width);
void compressor_cache_free(compressor_cache *c);
float *compressor_cache_push(compressor_cache *c); /* room for one more entry */

#endif
