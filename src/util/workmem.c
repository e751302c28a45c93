/* Why a cache: with 512 tokens a layer allocates buffers of up to 64 MB
 * (the queries of 64 heads x 512), which malloc serves from fresh mmaps.
 * Their pages fault in on first touch, inside the matmul that writes them,
 * 4 KB at a time; on the CI machine (a VM with shadow page tables) that
 * cost more than the arithmetic: prefill of the Flash-shaped bench model
 * ran at 72 tok/s, and at 119 tok/s with the same buffers in huge pages
 * (GLIBC_TUNABLES=glibc.malloc.hugetlb=1). Blocks from 1 MB up are kept
 * after work_free and handed to the next request they fit (at most twice
 * the size asked), so after the first chunk a forward pass maps nothing. */
#include "util/workmem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "util/util.h"

enum { HEADER = 64, CACHED_MAX = 32, MAGIC = 0x574B4D45 };
#define BIG ((size_t)1 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

typedef struct {
    size_t cap; /* bytes of the block, header included */
    unsigned magic;
    int mapped; /* 1: mmap'd (cached on free), 0: malloc'd */
} header;

static struct {
    pthread_mutex_t lock;
    header *block[CACHED_MAX];
    int n;
} cache = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static header *take_cached(size_t need) {
    int best = -1;
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < cache.n; i++)
        if (cache.block[i]->cap >= need && cache.block[i]->cap / 2 <= need && (best < 0 || cache.block[i]->cap < cache.block[best]->cap))
            best = i;
    header *h = NULL;
    if (best >= 0) h = cache.block[best], cache.block[best] = cache.block[--cache.n];
    pthread_mutex_unlock(&cache.lock);
    return h;
}

void *huge_map(size_t bytes, size_t *len) {
    *len = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, *len, MADV_HUGEPAGE);
#endif
    return p;
}

void huge_release(const void *p, size_t bytes) {
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE, b = ((uintptr_t)p + bytes) / HUGE_PAGE * HUGE_PAGE;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

void *work_alloc(size_t bytes) {
    size_t need = bytes + HEADER;
    header *h;
    if (need < BIG) {
        h = xaligned(need);
        h->cap = need, h->mapped = 0;
    } else if (!(h = take_cached(need))) {
        size_t cap;
        if (!(h = huge_map(need, &cap))) {
            fprintf(stderr, "v4c: out of memory (%zu bytes)\n", cap);
            abort();
        }
        h->cap = cap, h->mapped = 1;
    }
    h->magic = MAGIC;
    return (char *)h + HEADER;
}

void work_free(void *p) {
    if (!p) return;
    header *h = (header *)((char *)p - HEADER);
    if (h->magic != MAGIC) {
        fprintf(stderr, "v4c: work_free of a buffer work_alloc did not return\n");
        abort();
    }
    h->magic = 0;
    if (!h->mapped) {
        free(h);
        return;
    }
    pthread_mutex_lock(&cache.lock);
    int kept = cache.n < CACHED_MAX;
    if (kept) cache.block[cache.n++] = h;
    pthread_mutex_unlock(&cache.lock);
    if (!kept) munmap(h, h->cap);
}

void work_release(void) {
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < cache.n; i++) munmap(cache.block[i], cache.block[i]->cap);
    cache.n = 0;
    pthread_mutex_unlock(&cache.lock);
}
