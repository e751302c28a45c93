#include "text/utf8.h"

int utf8_seq_len(const unsigned char *s, size_t avail) {
    if (avail == 0) return -1;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= avail) return -1;
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    }
    return need;
}

size_t utf8_valid_prefix(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int n = utf8_seq_len(u + i, len - i);
        if (n <= 0) return i;
        i += (size_t)n;
    }
    return len;
}

void utf8_append_lossy(strbuf *out, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < len) {
        int n = utf8_seq_len(u + i, len - i);
        if (n > 0) {
            i += (size_t)n;
            continue;
        }
        strbuf_append(out, s + run, i - run);
        strbuf_append(out, "\xEF\xBF\xBD", 3);
        /* One replacement per maximal valid prefix, as from_utf8_lossy. */
        size_t skip = 1;
        if (n < 0) skip = len - i;
        else
            for (size_t k = 2; k <= 3 && i + k <= len; k++)
                if (utf8_seq_len(u + i, k) == -1) skip = k;
        i += skip;
        run = i;
    }
    strbuf_append(out, s + run, len - run);
}
