#include "text/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
