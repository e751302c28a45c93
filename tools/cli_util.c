#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cli_parse_ids(const char *s, int32_t **out, const char *what) {
    int n = 0, cap = 64;
    int32_t *ids = malloc(cap * sizeof(int32_t));
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "v4c: %s: expected comma-separated token ids, bad entry at '%.20s'\n", what, p);
            free(ids);
            return -1;
        }
        if (n == cap) ids = realloc(ids, (cap *= 2) * sizeof(int32_t));
        ids[n++] = (int32_t)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) {
            fprintf(stderr, "v4c: %s: unexpected '%c' after token id %ld\n", what, *p, v);
            free(ids);
            return -1;
        }
    }
    *out = ids;
    return n;
}
