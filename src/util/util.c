#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int v4c_verbose = 0;

void v4c_set_verbose(int level) { v4c_verbose = level; }

int v4c_fail(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, V4C_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void v4c_log(int level, const char *fmt, ...) {
    if (level > v4c_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("v4c: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *check(void *p, size_t n) {
    if (!p && n) {
        fprintf(stderr, "v4c: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void *xmalloc(size_t n) { return check(malloc(n ? n : 1), n); }
void *xcalloc(size_t n, size_t size) { return check(calloc(n ? n : 1, size ? size : 1), n * size); }
void *xrealloc(void *p, size_t n) { return check(realloc(p, n ? n : 1), n); }
void *xaligned(size_t n) { return check(aligned_alloc(64, (n + 63) / 64 * 64 + 64 * !n), n); }
char *xstrdup(const char *s) { return check(strdup(s), strlen(s) + 1); }

char *xstrndup(const char *s, size_t n) {
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *read_file(const char *path, size_t *len, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        v4c_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        v4c_fail(err, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}
