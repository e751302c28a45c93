#include "text/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void buf_reserve(text_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void text_buf_append(text_buf *b, const void *data, size_t len) {
    buf_reserve(b, len);
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void text_buf_append_str(text_buf *b, const char *s) { text_buf_append(b, s, strlen(s)); }

void text_buf_append_char(text_buf *b, char c) { text_buf_append(b, &c, 1); }

char *text_buf_take(text_buf *b, size_t *len) {
    if (!b->data) text_buf_append(b, "", 0);
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void text_buf_free(text_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void text_ids_push(text_ids *v, int32_t id) { text_ids_append(v, &id, 1); }

void text_ids_append(text_ids *v, const int32_t *ids, size_t n) {
    if (v->len + n > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->len + n) cap *= 2;
        v->data = xrealloc(v->data, cap * sizeof *v->data);
        v->cap = cap;
    }
    if (n) memcpy(v->data + v->len, ids, n * sizeof *ids);
    v->len += n;
}

void text_ids_free(text_ids *v) {
    free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}
