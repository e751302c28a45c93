/* Growable int32 buffers (byte buffers: util/strbuf.h) for the text module. Allocation goes
 * through util's xmalloc family, which aborts with a message on failure:
 * a tokenizer that cannot allocate a few bytes has no useful way on. */
#ifndef V4C_TEXT_BUF_H
#define V4C_TEXT_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h" /* byte buffers */
#include "util/util.h"


typedef struct {
    int32_t *data;
    size_t len, cap;
} text_ids;

void text_ids_push(text_ids *v, int32_t id);
void text_ids_append(text_ids *v, const int32_t *ids, size_t n);
void text_ids_free(text_ids *v);

#endif
