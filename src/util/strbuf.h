/* A growable byte buffer, NUL-terminated once anything was appended. Used by
 * the text module (prompts, decoded text) and the server (responses, SSE). */
#ifndef V4C_STRBUF_H
#define V4C_STRBUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len, cap;
} strbuf;

void strbuf_append(strbuf *b, const void *data, size_t len);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (never NULL; "" when empty) and resets b. */
char *strbuf_take(strbuf *b, size_t *len);
void strbuf_free(strbuf *b);

#endif
