/* One model, two uses: the training forward on the golden BF16 checkpoint
 * reproduces the reference's prefill and MTP logits with the golden
 * tolerance (max|got - want| / std(want) per row, argmax agreement).
 * usage: test_train_golden GOLDEN_CASE_DIR */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/config.h"
#include "train/model.h"

static int read_ids(json_t *c, const char *key, int32_t *out, int max) {
    json_t *a = json_object_get(c, key);
    int n = (int)json_array_size(a);
    for (int i = 0; i < n && i < max; i++) out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return n;
}

static float *read_f32(const char *dir, const char *file, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    float *v = malloc(n * sizeof(float));
    size_t got = f ? fread(v, sizeof(float), n, f) : 0;
    if (f) fclose(f);
    if (got != n) {
        fprintf(stderr, "%s: short file\n", path);
        free(v);
        return NULL;
    }
    return v;
}

/* Worst per-row max|d|/std over rows; counts argmax disagreements. */
static double compare(const real *got, int first_row, const float *want, int rows, int V, int *disagree) {
    double worst = 0;
    *disagree = 0;
    for (int r = 0; r < rows; r++) {
        const real *g = got + (size_t)(first_row + r) * V;
        const float *w = want + (size_t)r * V;
        double mean = 0, var = 0, maxabs = 0;
        int ag = 0, aw = 0;
        for (int i = 0; i < V; i++) mean += w[i];
        mean /= V;
        for (int i = 0; i < V; i++) {
            var += (w[i] - mean) * (w[i] - mean);
            maxabs = fmax(maxabs, fabs((double)g[i] - w[i]));
            if (g[i] > g[ag]) ag = i;
            if (w[i] > w[aw]) aw = i;
        }
        double rel = maxabs / sqrt(var / V);
        worst = rel > worst ? rel : worst;
        *disagree += ag != aw;
    }
    return worst;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *dir = argv[1];
    char path[4096], err[V4C_ERR_LEN];
    v4c_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config_load(&cfg, path, err)) return fprintf(stderr, "%s\n", err), 1;
    snprintf(path, sizeof path, "%s/case.json", dir);
    json_error_t jerr;
    json_t *c = json_load_file(path, 0, &jerr);
    if (!c) return fprintf(stderr, "%s: %s\n", path, jerr.text), 1;
    int32_t prompt[1024], decode[256], mtp[256];
    int np = read_ids(c, "prompt_ids", prompt, 1024), nd = read_ids(c, "decode_ids", decode, 256), nm = read_ids(c, "mtp_ids", mtp, 256);
    int rows = nd + 1, T = np + nd, V = cfg.vocab_size;
    /* one sequence of T + 2 ids: prompt, decode ids, the last MTP id, a dummy target */
    int32_t *tokens = calloc((size_t)T + 2, sizeof(int32_t));
    memcpy(tokens, prompt, (size_t)np * sizeof(int32_t));
    memcpy(tokens + np, decode, (size_t)nd * sizeof(int32_t));
    tokens[T] = mtp[nm - 1];

    tr_model m;
    tr_model_init(&m, &cfg);
    if (tr_model_load(&m, dir, err)) return fprintf(stderr, "%s\n", err), 1;
    tr_run r;
    tr_run_init(&r, &m, 1, T);
    tr_opts o = {.sparse = 1, .quant = 1};
    tr_forward(&m, &o, &r, tokens);

    float *want = read_f32(dir, "logits.f32", (size_t)rows * V), *want_mtp = read_f32(dir, "mtp_logits.f32", (size_t)rows * V);
    int fails = !want || !want_mtp, dis = 0, dis_mtp = 0;
    if (!fails) {
        double w = compare(r.head.logits, np - 1, want, rows, V, &dis), wm = compare(r.mtp_head.logits, np - 1, want_mtp, rows, V, &dis_mtp);
        printf("main logits: max|d|/std %.3g, argmax disagree %d/%d\n", w, dis, rows);
        printf("mtp logits:  max|d|/std %.3g, argmax disagree %d/%d\n", wm, dis_mtp, rows);
        fails = w > 1e-3 || wm > 1e-3 || dis || dis_mtp;
    }
    printf("%s\n", fails ? "FAIL" : "OK");
    free(want);
    free(want_mtp);
    tr_run_free(&r);
    tr_model_free(&m);
    free(tokens);
    json_decref(c);
    return fails;
}
