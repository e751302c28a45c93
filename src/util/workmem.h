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

#endif
