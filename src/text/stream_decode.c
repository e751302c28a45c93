/* Streaming detokenization: tokens split characters (a CJK character or an
 * emoji is often two or three byte tokens), so bytes are held back until
 * they complete a UTF-8 sequence. */
#include <stdio.h>
#include <stdlib.h>

#include "text/tokenizer_internal.h"
#include "text/utf8.h"

struct v4c_stream_decoder {
    const v4c_tokenizer *tok;
    strbuf pending; /* bytes not yet emitted: an incomplete sequence */
    strbuf out;     /* what the last call returned */
};

v4c_stream_decoder *v4c_stream_decoder_new(const v4c_tokenizer *tok) {
    v4c_stream_decoder *d = xcalloc(1, sizeof *d);
    d->tok = tok;
    return d;
}

void v4c_stream_decoder_free(v4c_stream_decoder *d) {
    if (!d) return;
    strbuf_free(&d->pending);
    strbuf_free(&d->out);
    free(d);
}

/* Moves every complete sequence of pending to out; invalid bytes become
 * U+FFFD, an incomplete tail stays unless at_end. */
static void drain(v4c_stream_decoder *d, int at_end) {
    const unsigned char *p = (const unsigned char *)d->pending.data;
    size_t n = d->pending.len, i = 0;
    while (i < n) {
        int len = utf8_seq_len(p + i, n - i);
        if (len > 0) i += (size_t)len;
        else if (len == 0) i++;
        else if (at_end) i = n;
        else break;
    }
    utf8_append_lossy(&d->out, d->pending.data, i);
    size_t rest = n - i;
    for (size_t k = 0; k < rest; k++) d->pending.data[k] = d->pending.data[i + k];
    d->pending.len = rest;
}

long v4c_stream_decoder_push(v4c_stream_decoder *d, int32_t id, const char **text, char *err) {
    size_t len;
    const char *bytes = v4c_tokenizer_token_bytes(d->tok, id, &len);
    d->out.len = 0;
    strbuf_append(&d->out, "", 0);
    *text = d->out.data;
    if (!bytes) {
        snprintf(err, V4C_ERR_LEN, "unknown token id %ld", (long)id);
        return -1;
    }
    strbuf_append(&d->pending, bytes, len);
    drain(d, 0);
    *text = d->out.data;
    return (long)d->out.len;
}

long v4c_stream_decoder_flush(v4c_stream_decoder *d, const char **text) {
    d->out.len = 0;
    strbuf_append(&d->out, "", 0);
    drain(d, 1);
    *text = d->out.data;
    return (long)d->out.len;
}
