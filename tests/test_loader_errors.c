/* Bad input to the loader: each case builds a broken model directory from
 * the golden FP8 checkpoint and expects v4c_model_open to fail with a message
 * naming the file/tensor/key; the CLI must exit non-zero with one line.
 * usage: test_loader_errors GOLDEN_MODEL_DIR V4C_BINARY */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "test_util.h"
#include "util/util.h"
#include "v4c.h"

static const char *golden, *v4c_bin;
static char *config_text;

typedef void (*tensor_edit)(st_write_tensor *t, int *n, void *arg);

/* A model dir with config text `cfg` and the golden tensors after `edit`. */
static char *make_dir(const char *cfg, tensor_edit edit, void *arg) {
    char *dir = test_mkdtemp(), path[4096], err[V4C_ERR_LEN];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (cfg) test_write_text(path, cfg);
    st_set st;
    snprintf(path, sizeof path, "%s/model.safetensors", golden);
    if (st_open_file(&st, path, err)) {
        fprintf(stderr, "cannot open golden model: %s\n", err);
        exit(1);
    }
    st_write_tensor *t = calloc(st.n_tensors, sizeof *t);
    int n = st.n_tensors;
    for (int i = 0; i < n; i++) {
        t[i].name = st.tensors[i].name;
        t[i].dtype = st.tensors[i].dtype;
        t[i].ndim = st.tensors[i].ndim;
        memcpy(t[i].shape, st.tensors[i].shape, sizeof t[i].shape);
        t[i].data = st.tensors[i].data;
    }
    if (edit) edit(t, &n, arg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (st_write_file(path, t, n, err)) fprintf(stderr, "write: %s\n", err);
    free(t);
    st_close(&st);
    return dir;
}

static char *config_with(const char *from, const char *to) {
    const char *p = strstr(config_text, from);
    if (!p) {
        fprintf(stderr, "config has no '%s'\n", from);
        exit(1);
    }
    size_t a = p - config_text;
    char *s = malloc(strlen(config_text) + strlen(to) + 1);
    memcpy(s, config_text, a);
    strcpy(s + a, to);
    strcat(s, p + strlen(from));
    return s;
}

/* Expect failure mentioning every needle, from the API and from the CLI. */
static void expect_error(const char *what, const char *dir, const char *needle1, const char *needle2) {
    char err[V4C_ERR_LEN] = "";
    v4c_model *m = v4c_model_open(dir, err);
    CHECK(m == NULL, "%s: open must fail", what);
    v4c_model_free(m);
    CHECK(strstr(err, needle1) != NULL, "%s: message '%s' must name '%s'", what, err, needle1);
    if (needle2) CHECK(strstr(err, needle2) != NULL, "%s: message '%s' must say '%s'", what, err, needle2);
    CHECK(strchr(err, '\n') == NULL, "%s: one line", what);

    char cmd[8192], out[4096] = "";
    snprintf(cmd, sizeof cmd, "'%s' info -m '%s' 2>&1 >/dev/null", v4c_bin, dir);
    FILE *p = popen(cmd, "r");
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = 0;
    int status = pclose(p);
    int lines = 0;
    for (char *c = out; *c; c++) lines += *c == '\n';
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0, "%s: CLI exits non-zero (status %d)", what, status);
    CHECK(lines == 1 && strstr(out, needle1), "%s: CLI prints one line naming '%s', got: %s", what, needle1, out);
}

static void drop_tensor(st_write_tensor *t, int *n, void *arg) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, arg)) {
            memmove(t + i, t + i + 1, (*n - i - 1) * sizeof *t);
            (*n)--;
            return;
        }
}

static void reshape_wkv(st_write_tensor *t, int *n, void *arg) {
    (void)arg;
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "layers.2.attn.wkv.weight")) t[i].shape[0] = 64, t[i].shape[1] = 256;
}

static void sink_as_i32(st_write_tensor *t, int *n, void *arg) {
    (void)arg;
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "layers.1.attn.attn_sink")) t[i].dtype = DT_I32;
}

static void wq_a_as_f16(st_write_tensor *t, int *n, void *arg) {
    (void)arg;
    static uint16_t zeros[128 * 128 * 2];
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "layers.0.attn.wq_a.weight")) t[i].dtype = DT_F16, t[i].data = zeros;
}

static void bad_tid2eid(st_write_tensor *t, int *n, void *arg) {
    (void)arg;
    static int64_t table[1024 * 2];
    for (int i = 0; i < 1024 * 2; i++) table[i] = i % 8;
    table[77] = 8; /* one past the last expert */
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, "layers.0.ffn.gate.tid2eid")) t[i].data = table;
}

static void rewrite_file(const char *dir, long keep, long offset, const char *patch) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    if (patch) {
        fseek(f, offset, SEEK_SET);
        fwrite(patch, 1, strlen(patch), f);
    }
    fclose(f);
    if (keep >= 0 && truncate(path, keep) != 0) perror("truncate");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_loader_errors GOLDEN_MODEL_DIR V4C_BINARY\n");
        return 2;
    }
    golden = argv[1];
    v4c_bin = argv[2];
    char path[4096], err[V4C_ERR_LEN];
    snprintf(path, sizeof path, "%s/config.json", golden);
    config_text = read_file(path, NULL, err);
    if (!config_text) return fprintf(stderr, "%s\n", err), 1;

    char *d, *cfg;
    /* The unmodified copy opens: the harness itself is sound. */
    d = make_dir(config_text, NULL, NULL);
    v4c_model *ok = v4c_model_open(d, err);
    CHECK(ok != NULL, "an unmodified copy must open: %s", err);
    v4c_model_free(ok);
    test_rmtree(d);

    d = make_dir(NULL, NULL, NULL);
    expect_error("missing config.json", d, "config.json", "cannot open");
    test_rmtree(d);

    d = make_dir("{\"hidden_size\": 128,", NULL, NULL);
    expect_error("config JSON does not parse", d, "config.json", "does not parse");
    test_rmtree(d);

    cfg = config_with("\"hidden_size\": 128,", "");
    d = make_dir(cfg, NULL, NULL);
    expect_error("config key missing", d, "'hidden_size'", "missing");
    test_rmtree(d), free(cfg);

    cfg = config_with("\"hidden_size\": 128", "\"hidden_size\": \"128\"");
    d = make_dir(cfg, NULL, NULL);
    expect_error("config key of the wrong type", d, "'hidden_size'", "number");
    test_rmtree(d), free(cfg);

    cfg = config_with("\"beta_slow\": 1", "\"beta_slow_typo\": 1");
    d = make_dir(cfg, NULL, NULL);
    expect_error("nested config key missing", d, "rope_scaling.beta_slow", "missing");
    test_rmtree(d), free(cfg);

    cfg = config_with("\"compress_ratios\": [", "\"compress_ratios\": [4, ");
    d = make_dir(cfg, NULL, NULL);
    expect_error("compress_ratios inconsistent with the layer count", d, "compress_ratios", "expected");
    test_rmtree(d), free(cfg);

    cfg = config_with("\"num_attention_heads\": 4", "\"num_attention_heads\": 3");
    d = make_dir(cfg, NULL, NULL);
    expect_error("heads not divisible by o_groups", d, "o_groups", NULL);
    test_rmtree(d), free(cfg);

    cfg = config_with("\"hidden_size\": 128", "\"hidden_size\": 256");
    d = make_dir(cfg, NULL, NULL);
    expect_error("config disagrees with the tensors", d, "embed.weight", "expected shape [1024, 256], got [1024, 128]");
    test_rmtree(d), free(cfg);

    d = make_dir(config_text, drop_tensor, "layers.2.attn.wkv.weight");
    expect_error("missing tensor", d, "missing tensor layers.2.attn.wkv.weight", NULL);
    test_rmtree(d);

    d = make_dir(config_text, drop_tensor, "layers.3.ffn.experts.5.w2.scale");
    expect_error("missing FP4 scale", d, "missing tensor layers.3.ffn.experts.5.w2.scale", NULL);
    test_rmtree(d);

    d = make_dir(config_text, reshape_wkv, NULL);
    expect_error("wrong shape", d, "layers.2.attn.wkv.weight", "expected shape [128, 128], got [64, 256]");
    test_rmtree(d);

    d = make_dir(config_text, sink_as_i32, NULL);
    expect_error("wrong dtype (vector)", d, "layers.1.attn.attn_sink", "dtype I32");
    test_rmtree(d);

    d = make_dir(config_text, wq_a_as_f16, NULL);
    expect_error("wrong dtype (matrix)", d, "layers.0.attn.wq_a.weight", "dtype F16");
    test_rmtree(d);

    d = make_dir(config_text, bad_tid2eid, NULL);
    expect_error("hash table names a missing expert", d, "layers.0.ffn.gate.tid2eid", "outside");
    test_rmtree(d);

    d = make_dir(config_text, NULL, NULL);
    rewrite_file(d, 4000000, 0, NULL);
    expect_error("truncated data", d, "model.safetensors", "truncated");
    test_rmtree(d);

    d = make_dir(config_text, NULL, NULL);
    rewrite_file(d, 1000, 0, NULL);
    expect_error("truncated header", d, "model.safetensors", "truncated");
    test_rmtree(d);

    d = make_dir(config_text, NULL, NULL);
    rewrite_file(d, 5, 0, NULL);
    expect_error("file shorter than the header length", d, "model.safetensors", "truncated");
    test_rmtree(d);

    d = make_dir(config_text, NULL, NULL);
    rewrite_file(d, -1, 9, "}}}}");
    expect_error("header JSON does not parse", d, "model.safetensors", "header JSON does not parse");
    test_rmtree(d);

    d = make_dir(config_text, NULL, NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    unlink(path);
    expect_error("no weights file", d, "no model.safetensors", NULL);
    test_rmtree(d);

    /* Sharded layout: an index naming a shard that is not there. */
    d = make_dir(config_text, NULL, NULL);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", d);
    test_write_text(path, "{\"weight_map\": {\"embed.weight\": \"model-00001-of-00002.safetensors\"}}");
    expect_error("missing shard", d, "model-00001-of-00002.safetensors", "cannot open");
    test_write_text(path, "{\"weight_map\": {\"embed.weight\": \"model.safetensors\", \"ghost.weight\": \"model.safetensors\"}}");
    expect_error("index lists a tensor the shard lacks", d, "ghost.weight", "missing");
    test_write_text(path, "{\"weight_map\": [}");
    expect_error("index JSON does not parse", d, "model.safetensors.index.json", "does not parse");
    test_rmtree(d);

    free(config_text);
    return test_done("test_loader_errors");
}
