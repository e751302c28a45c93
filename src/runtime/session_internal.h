/* The session struct, shared by session.c (compute) and session_file.c
 * (saving and loading). */
#ifndef V4C_SESSION_INTERNAL_H
#define V4C_SESSION_INTERNAL_H

#include "model/cache.h"
#include "model/model.h"

/* Final main-model streams of the last few positions, so a rollback can
 * hand the MTP block the stream it must restart from. */
#define XHIST (V4C_MAX_ROLLBACK + 1)

struct v4c_session {
    v4c_model *m;
    int max_ctx, pos, use_mtp;
    int32_t *tokens;     /* [max_ctx] ids fed so far */
    layer_cache *caches; /* n_layers + n_mtp */
    /* The MTP block runs at position t once token t+1 is known, so it
     * trails the main model: positions < mtp_pos are done, and when
     * has_pending the stream of position pos-1 waits for its next token. */
    float *xhist;        /* [XHIST][hc*D], position p at p % XHIST */
    int has_pending, mtp_pos;
};

static inline float *session_xrow(const struct v4c_session *s, int p) {
    const v4c_config *c = &s->m->cfg;
    return s->xhist + (size_t)(p % XHIST) * c->hc_mult * c->hidden_size;
}

#endif
