/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF). */
#ifndef V4C_TEXT_UTF8_H
#define V4C_TEXT_UTF8_H

#include <stddef.h>

#include "text/buf.h"

/* Length (1–4) of the valid sequence at s, 0 if the bytes can never start a
 * valid sequence, or -1 if s[0..avail) is a valid but incomplete prefix. */
int utf8_seq_len(const unsigned char *s, size_t avail);

/* Offset of the first byte that is not part of a valid sequence (len when
 * the whole string is valid UTF-8). */
size_t utf8_valid_prefix(const char *s, size_t len);

/* Appends s to out with each invalid sequence replaced by U+FFFD, the way
 * Hugging Face decoders render stray bytes. */
void utf8_append_lossy(strbuf *out, const char *s, size_t len);

#endif
