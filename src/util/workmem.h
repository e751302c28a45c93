/* Scratch buffers of the forward pass. Every layer call allocates and frees
 * its activations; large ones come from a small cache of blocks backed by
 * transparent huge pages, so a call reuses memory whose pages are already
 * mapped instead of faulting fresh 4 KB pages in each time (workmem.c). */
#ifndef V4C_WORKMEM_H
#define V4C_WORKMEM_H

#include <stddef.h>

/* 64-byte aligned, uninitialised; aborts on out-of-memory like xmalloc. */
void *work_alloc(size_t bytes);
/* Returns a work_alloc buffer (NULL: nothing). */
void work_free(void *p);
/* Unmaps every cached block (tests, or a process done with the model). */
void work_release(void);

/* Anonymous memory in transparent huge pages (MADV_HUGEPAGE): bytes
 * rounded up to whole 2 MB pages, the mapped length in *len (munmap it
 * with that); NULL when it cannot be had. Weights, scratch blocks and the
 * bandwidth probe all stream through such memory: with 4 KB pages this
 * project's VM spends more on page walks than on the reads. */
void *huge_map(size_t bytes, size_t *len);

/* Gives the whole 2 MB pages inside [p, p + bytes) of a mapping back to
 * the kernel: bytes nothing will read again, such as a tensor repacked
 * elsewhere (anonymous memory then reads as zeros, a file mapping as the
 * file). Pages shared with neighbours are kept, so none is split. */
void huge_release(const void *p, size_t bytes);

#endif
