#include "text/bytelevel.h"

#include "text/utf8.h"

/* Printable Latin-1 bytes stand for themselves; the other 68 bytes are
 * numbered from U+0100 in byte order. */
static int is_printable_latin1(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

/* The 68 other bytes, in order, are 0x00–0x20 (33), 0x7F–0xA0 (34) and
 * 0xAD; they become U+0100 + their rank in that list. */
unsigned bytelevel_codepoint(unsigned char b) {
    if (is_printable_latin1(b)) return b;
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (b - 0x7Fu);
    return 256u + 67u; /* 0xAD */
}

/* Inverse of bytelevel_codepoint, -1 for code points outside the alphabet. */
static int codepoint_byte(unsigned cp) {
    if (cp < 256) return is_printable_latin1(cp) ? (int)cp : -1;
    unsigned n = cp - 256;
    if (n <= 32) return (int)n;
    if (n <= 66) return (int)(0x7F + n - 33);
    if (n == 67) return 0xAD;
    return -1;
}

int bytelevel_decode(const char *token, size_t len, strbuf *out) {
    const unsigned char *u = (const unsigned char *)token;
    size_t i = 0;
    while (i < len) {
        int n = utf8_seq_len(u + i, len - i);
        if (n <= 0) return -1;
        unsigned cp = u[i];
        if (n == 2) cp = ((u[i] & 0x1Fu) << 6) | (u[i + 1] & 0x3Fu);
        int b = n <= 2 ? codepoint_byte(cp) : -1;
        if (b >= 0) strbuf_putc(out, (char)b);
        else strbuf_append(out, token + i, (size_t)n);
        i += (size_t)n;
    }
    return 0;
}
