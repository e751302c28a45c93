/* gen-model presets against the released checkpoints' tensor inventory
 * (tests/data/inventory, from shared/golden/inventory): every tensor the
 * generator lists for a preset must appear there with the same dtype and
 * shape, and every inventory tensor of the layers generated must be
 * listed. usage: test_presets INVENTORY_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/generate.h"
#include "test_util.h"

typedef struct {
    char name[160], dtype[16], shape[48];
} entry;

static entry *load(const char *path, int *n) {
    char cmd[4200], line[512];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    FILE *p = popen(cmd, "r");
    int cap = 1 << 18;
    entry *e = malloc(cap * sizeof *e);
    *n = 0;
    while (p && fgets(line, sizeof line, p)) {
        if (*n == cap) e = realloc(e, (cap *= 2) * sizeof *e);
        if (sscanf(line, "%159s %15s %47s", e[*n].name, e[*n].dtype, e[*n].shape) == 3 && strcmp(e[*n].name, "name")) (*n)++;
    }
    if (p) pclose(p);
    return e;
}

static int cmp(const void *a, const void *b) { return strcmp(((const entry *)a)->name, ((const entry *)b)->name); }

static void check_preset(const char *preset, const char *inventory, int layers) {
    v4c_config c;
    CHECK(model_preset(preset, &c) == 0, "preset %s exists", preset);
    int n_inv;
    entry *inv = load(inventory, &n_inv);
    CHECK(n_inv > 60000, "%s: inventory has %d tensors", inventory, n_inv);
    qsort(inv, n_inv, sizeof *inv, cmp);
    /* The whole preset (all layers) lists the same tensors as the inventory. */
    st_write_tensor *t;
    int n = gen_list_tensors(&c, 1, &t);
    CHECK(n == n_inv, "%s: %d tensors generated, inventory has %d", preset, n, n_inv);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        entry key;
        snprintf(key.name, sizeof key.name, "%s", t[i].name);
        entry *e = bsearch(&key, inv, n_inv, sizeof *inv, cmp);
        char shape[48];
        if (t[i].ndim == 1) snprintf(shape, sizeof shape, "%lld", (long long)t[i].shape[0]);
        else snprintf(shape, sizeof shape, "%lldx%lld", (long long)t[i].shape[0], (long long)t[i].shape[1]);
        int ok = e && !strcmp(e->dtype, dtype_table[t[i].dtype].name) && !strcmp(e->shape, shape);
        if (!ok && bad++ < 5)
            CHECK(ok, "%s: %s %s %s vs inventory %s %s", preset, t[i].name, dtype_table[t[i].dtype].name, shape, e ? e->dtype : "(absent)",
                  e ? e->shape : "");
    }
    CHECK(bad == 0, "%s: %d tensors differ from the inventory", preset, bad);
    gen_free_specs(t, n);
    (void)layers;
    free(inv);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_presets INVENTORY_DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/flash_inventory.tsv.gz", argv[1]);
    check_preset("flash", path, 43);
    snprintf(path, sizeof path, "%s/pro_inventory.tsv.gz", argv[1]);
    check_preset("pro", path, 61);
    return test_done("test_presets");
}
