/* Small shared helpers: error messages, logging, checked allocation. */
#ifndef V4C_UTIL_H
#define V4C_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "v4c.h"

/* Write a one-line message into err (V4C_ERR_LEN bytes) and return -1. */
int v4c_fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

extern int v4c_verbose;
void v4c_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that aborts on out-of-memory: a broken invariant, not input. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xaligned(size_t n); /* 64-byte aligned, free() it */
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n); /* n bytes of s, NUL-terminated */

/* Read a whole file into a NUL-terminated buffer. NULL + err on failure. */
char *read_file(const char *path, size_t *len, char *err);

#endif
