/* golden_compare ids CASE.json KEY: print the id list KEY as "1,2,3".
 * golden_compare CASE.json KEY GOT.f32: compare logits rows with the golden
 * file named by CASE.json's KEY ("logits" or "mtp_logits") using the
 * case's tolerance (shared/golden/README.md): max|got-want|/std(want) for
 * BF16 cases; min/mean cosine for FP8 cases; argmax agreement for both.
 * Prints the worst row and OK/FAIL; exit status 0 only when within bounds. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *load_f32(const char *path, long expect, const char *what) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (%s)\n", path, what);
        return NULL;
    }
    float *v = malloc(expect * sizeof(float) + 4);
    long got = (long)fread(v, sizeof(float), expect + 1, f);
    fclose(f);
    if (got != expect) {
        fprintf(stderr, "%s: %ld floats, expected %ld (%s)\n", path, got, expect, what);
        free(v);
        return NULL;
    }
    return v;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static int print_ids(const char *path, const char *key) {
    json_error_t jerr;
    json_t *c = json_load_file(path, 0, &jerr), *a = c ? json_object_get(c, key) : NULL;
    if (!json_is_array(a)) {
        fprintf(stderr, "%s: no id list '%s'\n", path, key);
        json_decref(c);
        return 2;
    }
    for (size_t i = 0; i < json_array_size(a); i++) printf("%s%lld", i ? "," : "", (long long)json_integer_value(json_array_get(a, i)));
    printf("\n");
    json_decref(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "ids")) return print_ids(argv[2], argv[3]);
    if (argc != 4) {
        fprintf(stderr, "usage: golden_compare CASE.json logits|mtp_logits GOT.f32 | golden_compare ids CASE.json KEY\n");
        return 2;
    }
    json_error_t jerr;
    json_t *c = json_load_file(argv[1], 0, &jerr);
    if (!c) {
        fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
        return 2;
    }
    json_t *spec = json_object_get(c, argv[2]), *tol = json_object_get(c, "tolerance");
    if (!spec || !tol) {
        fprintf(stderr, "%s: no '%s' or 'tolerance'\n", argv[1], argv[2]);
        return 2;
    }
    int rows = (int)json_integer_value(json_object_get(spec, "rows")), cols = (int)json_integer_value(json_object_get(spec, "cols"));
    char path[4096];
    const char *dir_end = strrchr(argv[1], '/');
    snprintf(path, sizeof path, "%.*s/%s", dir_end ? (int)(dir_end - argv[1]) : 1, dir_end ? argv[1] : ".",
             json_string_value(json_object_get(spec, "file")));
    float *want = load_f32(path, (long)rows * cols, "golden"), *got = load_f32(argv[3], (long)rows * cols, "computed");
    if (!want || !got) return 1;

    json_t *jmaxabs = json_object_get(tol, "max_abs_over_std"), *jmin = json_object_get(tol, "min_cosine"), *jmean = json_object_get(tol, "mean_cosine");
    double argmax_need = json_number_value(json_object_get(tol, "argmax_agree"));
    double worst_abs = 0, min_cos = 1, sum_cos = 0;
    int agree = 0, worst_row = 0, nonfinite = 0;
    for (int r = 0; r < rows; r++) {
        const float *w = want + (size_t)r * cols, *g = got + (size_t)r * cols;
        double mean = 0, var = 0, dot = 0, nw = 0, ng = 0, maxabs = 0;
        for (int i = 0; i < cols; i++) mean += w[i];
        mean /= cols;
        for (int i = 0; i < cols; i++) {
            if (!isfinite(g[i])) nonfinite++;
            var += (w[i] - mean) * (w[i] - mean);
            dot += (double)w[i] * g[i];
            nw += (double)w[i] * w[i];
            ng += (double)g[i] * g[i];
            maxabs = fmax(maxabs, fabs((double)g[i] - w[i]));
        }
        double rel = maxabs / sqrt(var / cols), cosv = dot / sqrt(nw * ng);
        if (rel > worst_abs) worst_abs = rel, worst_row = r;
        min_cos = fmin(min_cos, cosv);
        sum_cos += cosv;
        agree += argmax(w, cols) == argmax(g, cols);
    }
    double agree_frac = (double)agree / rows, mean_cos = sum_cos / rows;
    int ok = !nonfinite && agree_frac >= argmax_need;
    if (jmaxabs) ok = ok && worst_abs <= json_number_value(jmaxabs);
    if (jmin) ok = ok && min_cos >= json_number_value(jmin);
    if (jmean) ok = ok && mean_cos >= json_number_value(jmean);
    printf("%s %s: rows %d, max|d|/std %.3g (row %d), cosine min %.6f mean %.6f, argmax agree %.3f%s -> %s\n", argv[1], argv[2], rows,
           worst_abs, worst_row, min_cos, mean_cos, agree_frac, nonfinite ? ", NON-FINITE values" : "", ok ? "OK" : "FAIL");
    free(want);
    free(got);
    json_decref(c);
    return ok ? 0 : 1;
}
