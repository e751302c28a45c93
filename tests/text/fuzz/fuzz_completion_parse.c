/* libFuzzer target: arbitrary completions through the parser. The first
 * byte picks the mode and a chunk size; streaming in those chunks must
 * reach the same verdict and message as parsing in one piece. */
#include <stdlib.h>
#include <string.h>

#include "v4c_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    v4c_thinking_mode mode = data[0] & 1 ? V4C_MODE_THINKING : V4C_MODE_CHAT;
    size_t chunk = (size_t)(data[0] >> 1) + 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char err[V4C_ERR_LEN];
    size_t whole_len;
    char *whole = v4c_parse_completion(text, len, mode, &whole_len, err);

    v4c_completion_parser *p = v4c_completion_parser_new(mode);
    v4c_completion_delta delta;
    int ok = 1;
    for (size_t at = 0; at < len && ok; at += chunk)
        ok = !v4c_completion_parser_feed(p, text + at, at + chunk <= len ? chunk : len - at, &delta, err);
    ok = ok && !v4c_completion_parser_finish(p, err);
    char *streamed = ok ? v4c_completion_parser_message(p, NULL) : NULL;
    if (!whole != !streamed || (whole && strcmp(whole, streamed))) abort();
    free(streamed);
    free(whole);
    v4c_completion_parser_free(p);
    return 0;
}
