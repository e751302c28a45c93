#include "text/pretokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/buf.h"
#include "text/utf8.h"

void pretokenizer_init(pretokenizer *p) { memset(p, 0, sizeof *p); }

void pretokenizer_free(pretokenizer *p) {
    for (int i = 0; i < p->n_splits; i++) pcre2_code_free(p->splits[i].code);
    free(p->splits);
    memset(p, 0, sizeof *p);
}

int pretokenizer_add_split(pretokenizer *p, const char *pattern, size_t len, split_behavior behavior,
                           int invert, char *err) {
    int code_err;
    PCRE2_SIZE err_off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &code_err, &err_off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code_err, msg, sizeof msg);
        snprintf(err, 512, "pre-tokenizer regex %d: %s at offset %zu", p->n_splits, (const char *)msg,
                 (size_t)err_off);
        return -1;
    }
    p->splits = xrealloc(p->splits, (size_t)(p->n_splits + 1) * sizeof *p->splits);
    p->splits[p->n_splits++] = (struct pretok_split){
        .code = code,
        .jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0,
        .behavior = behavior,
        .invert = invert,
    };
    return 0;
}

void pretok_scratch_init(pretok_scratch *s) {
    s->match = pcre2_match_data_create(1, NULL);
    s->error = 0;
}

void pretok_scratch_free(pretok_scratch *s) {
    pcre2_match_data_free(s->match);
    s->match = NULL;
}

static void run_level(const pretokenizer *p, pretok_scratch *s, int level, const char *text, size_t len,
                      pretok_emit_fn emit, void *ctx);

/* A span of the current piece: a regex match or the gap between two. */
static void span(const pretokenizer *p, pretok_scratch *s, int level, const char *text, size_t len,
                 int is_match, pretok_emit_fn emit, void *ctx) {
    const struct pretok_split *sp = &p->splits[level];
    if (len == 0) return;
    if (sp->invert) is_match = !is_match;
    if (sp->behavior == SPLIT_REMOVED && is_match) return;
    run_level(p, s, level + 1, text, len, emit, ctx);
}

static void run_level(const pretokenizer *p, pretok_scratch *s, int level, const char *text, size_t len,
                      pretok_emit_fn emit, void *ctx) {
    if (level == p->n_splits) {
        emit(ctx, text, len);
        return;
    }
    const struct pretok_split *sp = &p->splits[level];
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match);
    size_t pos = 0, gap_start = 0;
    while (pos <= len) {
        int rc = 0;
        if (sp->jit) rc = pcre2_jit_match(sp->code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, s->match, NULL);
        /* The interpreter backs up JIT (whose stack is small) on any error. */
        if (!sp->jit || (rc < 0 && rc != PCRE2_ERROR_NOMATCH))
            rc = pcre2_match(sp->code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, s->match, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            s->error = rc;
            return;
        }
        size_t m0 = ov[0], m1 = ov[1];
        if (m1 == m0) {
            /* An empty match yields no piece; step one character on, as
             * JavaScript's matchAll does under the u flag. */
            if (m0 >= len) break;
            int n = utf8_seq_len((const unsigned char *)text + m0, len - m0);
            pos = m0 + (size_t)(n > 0 ? n : 1);
            continue;
        }
        span(p, s, level, text + gap_start, m0 - gap_start, 0, emit, ctx);
        span(p, s, level, text + m0, m1 - m0, 1, emit, ctx);
        if (s->error) return;
        gap_start = pos = m1;
    }
    span(p, s, level, text + gap_start, len - gap_start, 0, emit, ctx);
}

void pretokenizer_run(const pretokenizer *p, pretok_scratch *s, const char *text, size_t len,
                      pretok_emit_fn emit, void *ctx) {
    run_level(p, s, 0, text, len, emit, ctx);
}
