/* Opening a model directory, and what `v4c info` reports about it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/config.h"
#include "model/model.h"
#include "util/util.h"
#include "util/workmem.h"

v4c_model *v4c_model_open(const char *dir, char err[V4C_ERR_LEN]) {
    dtype_init_tables();
    v4c_model *m = xcalloc(1, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config_load(&m->cfg, path, err) || st_open_dir(&m->st, dir, err) || model_bind_weights(m, err)) {
        v4c_model_free(m);
        return NULL;
    }
    int unused = 0;
    for (int i = 0; i < m->st.n_tensors; i++) unused += !m->st.tensors[i].used;
    v4c_log(1, "%s: %d tensors in %d file(s), %d not used by the model (ignored)", dir, m->st.n_tensors, m->st.n_files, unused);
    return m;
}

void v4c_model_free(v4c_model *m) {
    if (!m) return;
    model_free_weights(m);
    st_close(&m->st);
    free(m);
    work_release(); /* the scratch blocks its forward passes left cached */
}

const v4c_config *v4c_model_config(const v4c_model *m) { return &m->cfg; }

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

void v4c_model_get_stats(const v4c_model *m, v4c_model_stats *st) {
    memset(st, 0, sizeof *st);
    const v4c_config *c = &m->cfg;
    for (int i = 0; i < m->st.n_files; i++) st->bytes_on_disk += (int64_t)m->st.files[i].size;
    for (int i = 0; i < m->st.n_tensors; i++) {
        const st_tensor *t = &m->st.tensors[i];
        if (!t->used) {
            st->n_tensors_ignored++;
            continue;
        }
        st->n_tensors_used++;
        st->bytes_weights += (int64_t)t->nbytes;
        const char *n = t->name;
        if (ends_with(n, ".scale")) {
            st->scale_elems += t->numel;
            continue;
        }
        if (ends_with(n, ".tid2eid")) continue; /* a routing table, not a parameter */
        int64_t p = (t->dtype == DT_I8 || t->dtype == DT_U8) ? 2 * t->numel : t->numel; /* packed FP4 pairs */
        if (!strncmp(n, "mtp.", 4)) st->params_mtp += p;
        else if (!strcmp(n, "embed.weight") || !strcmp(n, "head.weight")) st->params_embed += p;
        else if (strstr(n, ".experts.")) st->params_routed += p;
        else if (strstr(n, ".compressor.") || strstr(n, ".indexer.")) st->params_compress += p;
        else if (strstr(n, ".ffn")) st->params_shared += p;
        else if (strstr(n, "hc_")) st->params_hc += p;
        else if (strstr(n, ".attn")) st->params_attn += p;
        else st->params_other += p;
    }
    st->params_total = st->params_embed + st->params_attn + st->params_compress + st->params_routed + st->params_shared +
                       st->params_hc + st->params_mtp + st->params_other;
    /* Float32 cache entries: compressed (and indexer) entries grow with the
     * context; the window ring and compressor tails are fixed. */
    for (int l = 0; l < c->n_layers; l++) {
        int r = c->compress_ratios[l];
        st->kv_fixed_bytes += (int64_t)c->window * c->head_dim * 4;
        if (r > 0) {
            int width = (r == 4 ? 2 : 1) * c->head_dim;
            st->kv_bytes_per_token += (double)c->head_dim * 4 / r;
            st->kv_fixed_bytes += (int64_t)2 * 2 * r * width * 4;
        }
        if (r == 4) {
            st->kv_bytes_per_token += (double)c->index_head_dim * 4 / r;
            st->kv_fixed_bytes += (int64_t)2 * 2 * r * 2 * c->index_head_dim * 4;
        }
    }
}

/* FNV-1a, 64-bit. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t v4c_model_fingerprint(const v4c_model *m) { return m->fingerprint; }

uint64_t model_fingerprint(const v4c_model *m) {
    uint64_t h = fnv(0xcbf29ce484222325ULL, &m->cfg, sizeof m->cfg);
    for (int i = 0; i < m->st.n_tensors; i++) {
        const st_tensor *t = &m->st.tensors[i];
        if (!t->used) continue;
        size_t edge = t->nbytes < 64 ? t->nbytes : 64;
        h = fnv(h, t->name, strlen(t->name) + 1);
        h = fnv(h, &t->dtype, sizeof t->dtype);
        h = fnv(h, t->shape, t->ndim * sizeof(int64_t));
        h = fnv(h, t->data, edge);
        h = fnv(h, (const uint8_t *)t->data + t->nbytes - edge, edge);
    }
    return h;
}
