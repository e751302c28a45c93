/* Growable byte and int32 buffers for the text module. Allocation goes
 * through util's xmalloc family, which aborts with a message on failure:
 * a tokenizer that cannot allocate a few bytes has no useful way on. */
#ifndef V4C_TEXT_BUF_H
#define V4C_TEXT_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef struct {
    char *data; /* NUL-terminated once anything was appended */
    size_t len, cap;
} text_buf;

void text_buf_append(text_buf *b, const void *data, size_t len);
void text_buf_append_str(text_buf *b, const char *s);
void text_buf_append_char(text_buf *b, char c);
/* Hands the bytes to the caller (never NULL; "" when empty) and resets b. */
char *text_buf_take(text_buf *b, size_t *len);
void text_buf_free(text_buf *b);

typedef struct {
    int32_t *data;
    size_t len, cap;
} text_ids;

void text_ids_push(text_ids *v, int32_t id);
void text_ids_append(text_ids *v, const int32_t *ids, size_t n);
void text_ids_free(text_ids *v);

#endif
