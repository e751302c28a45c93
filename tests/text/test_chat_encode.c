/* Golden chat encodings: test_input_N.json must encode byte for byte to
 * test_output_N.txt (cases 1–3 thinking mode, 4 chat mode).
 * usage: test_chat_encode DATA_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v4c_text.h"
#include "util/util.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    int failures = 0;
    for (int i = 1; i <= 4; i++) {
        char in_path[1024], out_path[1024], err[V4C_ERR_LEN];
        snprintf(in_path, sizeof in_path, "%s/test_input_%d.json", argv[1], i);
        snprintf(out_path, sizeof out_path, "%s/test_output_%d.txt", argv[1], i);
        size_t in_len, want_len, got_len;
        char *input = read_file(in_path, &in_len, NULL), *want = read_file(out_path, &want_len, NULL);
        if (!input || !want) {
            printf("case %d: cannot read %s or %s\n", i, in_path, out_path);
            return 1;
        }
        v4c_chat_options opt;
        v4c_chat_options_default(&opt);
        opt.thinking_mode = i == 4 ? V4C_MODE_CHAT : V4C_MODE_THINKING;
        char *got = v4c_chat_encode(input, in_len, &opt, &got_len, err);
        if (!got) {
            printf("case %d: %s\n", i, err);
            failures++;
        } else if (got_len != want_len || memcmp(got, want, want_len)) {
            size_t k = 0;
            while (k < got_len && k < want_len && got[k] == want[k]) k++;
            printf("case %d: differs at byte %zu\n  got:  '%.80s'\n  want: '%.80s'\n", i, k, got + k, want + k);
            failures++;
        } else {
            printf("case %d: OK (%zu bytes)\n", i, got_len);
        }
        free(got);
        free(input);
        free(want);
    }
    return failures != 0;
}
