/* libFuzzer target: arbitrary chat JSON through the encoder, in both modes;
 * it must encode or refuse with a message, never crash or leak. */
#include <stdlib.h>

#include "v4c_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[V4C_ERR_LEN];
    v4c_chat_options opt;
    v4c_chat_options_default(&opt);
    for (int mode = 0; mode < 2; mode++) {
        opt.thinking_mode = mode ? V4C_MODE_THINKING : V4C_MODE_CHAT;
        opt.reasoning_effort = mode ? V4C_EFFORT_MAX : V4C_EFFORT_DEFAULT;
        opt.drop_thinking = mode;
        free(v4c_chat_encode((const char *)data, size, &opt, NULL, err));
    }
    return 0;
}
