/* The GPT-2 byte-level alphabet: every byte is written as one printable
 * code point so that BPE vocabularies are plain strings (space is 'Ġ'). */
#ifndef V4C_TEXT_BYTELEVEL_H
#define V4C_TEXT_BYTELEVEL_H

#include <stddef.h>

#include "text/buf.h"

/* Code point that stands for byte b. */
unsigned bytelevel_codepoint(unsigned char b);

/* Appends the raw bytes a vocabulary string stands for. Code points outside
 * the alphabet are copied as their UTF-8 (Hugging Face does the same).
 * Returns 0, or -1 if token is not valid UTF-8. */
int bytelevel_decode(const char *token, size_t len, strbuf *out);

#endif
