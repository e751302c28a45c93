/* The forward pass's scratch buffers (src/util/workmem.c): alignment, small
 * and large sizes, reuse of a freed large block for a request it fits
 * (and not for one less than half its size), and the bytes of live
 * buffers kept apart. */
#include <stdint.h>
#include <string.h>

#include "test_util.h"
#include "util/workmem.h"

int main(void) {
    work_free(NULL); /* nothing */
    size_t sizes[] = {1, 100, 4096, (1u << 20) - 64, 1u << 20, 3u << 20, 40u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint8_t *p = work_alloc(sizes[i]);
        CHECK(((uintptr_t)p & 63) == 0, "%zu bytes: 64-byte aligned", sizes[i]);
        memset(p, (int)i, sizes[i]);
        CHECK(p[0] == (uint8_t)i && p[sizes[i] - 1] == (uint8_t)i, "%zu bytes: writable to the end", sizes[i]);
        work_free(p);
    }
    /* A freed 3 MB block serves a 2 MB request, not a 512 KB one (malloc'd) or a 1 MB one (under half). */
    work_release();
    void *big = work_alloc(3u << 20);
    work_free(big);
    void *again = work_alloc(2u << 20);
    CHECK(again == big, "freed 3 MB block reused for 2 MB");
    void *other = work_alloc(2u << 20);
    CHECK(other != again, "a live block is not handed out twice");
    work_free(again), work_free(other);
    void *small = work_alloc(1u << 20);
    CHECK(small != big, "a 1 MB request does not take a block of more than twice its size");
    work_free(small);
    /* Live buffers do not overlap. */
    uint8_t *a = work_alloc(5u << 20), *b = work_alloc(5u << 20);
    memset(a, 1, 5u << 20), memset(b, 2, 5u << 20);
    CHECK(a[(5u << 20) - 1] == 1 && b[0] == 2, "two live large buffers keep their bytes");
    work_free(a), work_free(b);
    work_release();
    return test_done("test_workmem");
}
