/* Tiny test harness: CHECK records a failure with its location and goes on;
 * test_done prints "N passed, N failed" and returns the exit status. */
#ifndef V4C_TEST_UTIL_H
#define V4C_TEST_UTIL_H

#include <stdio.h>

extern int test_passed, test_failed;

#define CHECK(cond, ...) \
    do { \
        if (cond) test_passed++; \
        else { \
            test_failed++; \
            fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
        } \
    } while (0)

int test_done(const char *name);

/* A fresh empty directory under $TMPDIR (malloc'd path). */
char *test_mkdtemp(void);
void test_rmtree(char *dir); /* removes the tree and frees dir */
int test_copy_file(const char *from, const char *to);
/* Write text to a file. */
int test_write_text(const char *path, const char *text);

#endif
