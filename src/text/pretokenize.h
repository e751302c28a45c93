/* Pre-tokenization: the `Sequence` of `Split` steps of tokenizer.json, each
 * a PCRE2 regex (UTF + Unicode properties, JIT-compiled when available)
 * applied to every piece the previous step produced. */
#ifndef V4C_TEXT_PRETOKENIZE_H
#define V4C_TEXT_PRETOKENIZE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

typedef enum { SPLIT_ISOLATED, SPLIT_REMOVED } split_behavior;

typedef struct {
    struct pretok_split {
        pcre2_code *code;
        int jit; /* pcre2_jit_compile succeeded */
        split_behavior behavior;
        int invert; /* the regex matches the pieces, not the delimiters */
    } *splits;
    int n_splits;
} pretokenizer;

void pretokenizer_init(pretokenizer *p);
void pretokenizer_free(pretokenizer *p);
/* Appends a step; pattern is PCRE2 syntax. Returns 0 or -1 with err. */
int pretokenizer_add_split(pretokenizer *p, const char *pattern, size_t len, split_behavior behavior,
                           int invert, char *err);

/* Per-call state (PCRE2 match data is not shareable between threads). */
typedef struct {
    pcre2_match_data *match;
    int error; /* first PCRE2 matching error (e.g. a resource limit), 0 if none */
} pretok_scratch;

void pretok_scratch_init(pretok_scratch *s);
void pretok_scratch_free(pretok_scratch *s);

typedef void (*pretok_emit_fn)(void *ctx, const char *piece, size_t len);

/* Splits valid UTF-8 text and calls emit for each final piece in order.
 * Stops early, setting s->error, if PCRE2 fails rather than not matching. */
void pretokenizer_run(const pretokenizer *p, pretok_scratch *s, const char *text, size_t len,
                      pretok_emit_fn emit, void *ctx);

#endif
