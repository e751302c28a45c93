#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "v4c.h"

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

int cli_int(const char *opt, const char *arg, int min, int max) {
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || errno || v < min || v > max) {
        fprintf(stderr, "v4c: %s: expected an integer in [%d, %d], got '%s'\n", opt, min, max, arg);
        exit(2);
    }
    return (int)v;
}

float cli_float(const char *opt, const char *arg, float min, float max) {
    char *end;
    errno = 0;
    float v = strtof(arg, &end);
    if (end == arg || *end || errno || !(v >= min && v <= max)) {
        fprintf(stderr, "v4c: %s: expected a number in [%g, %g], got '%s'\n", opt, min, max, arg);
        exit(2);
    }
    return v;
}

v4c_model *cli_open_model(const char *dir) {
    char err[V4C_ERR_LEN];
    v4c_model *m = v4c_model_open(dir, err);
    if (!m) fprintf(stderr, "v4c: %s\n", err);
    return m;
}
