/* The tokenizer's parts, shared by the files of src/text. */
#ifndef V4C_TEXT_TOKENIZER_INTERNAL_H
#define V4C_TEXT_TOKENIZER_INTERNAL_H

#include <stdatomic.h>

#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/hashmap.h"
#include "text/pretokenize.h"
#include "v4c_text.h"

struct v4c_tokenizer {
    bpe_model bpe;
    pretokenizer pre;
    added_trie added;
    strmap ids_by_text; /* decoded bytes of vocabulary tokens, added contents */
    int32_t n_vocab;
    /* id → bytes it decodes to; tok_len == UINT32_MAX for ids never defined */
    size_t *tok_off;
    uint32_t *tok_len;
    unsigned char *is_added;
    char *blob;
    atomic_int warned_missing_specials; /* chat encoding warns once */
};

#endif
