#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "util/util.h"

size_t st_tensor_bytes(const st_write_tensor *t) {
    size_t n = dtype_table[t->dtype].size;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

int st_write_header(FILE *f, const st_write_tensor *t, int n) {
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++) json_array_append_new(shape, json_integer(t[i].shape[d]));
        size_t nb = st_tensor_bytes(&t[i]);
        json_object_set_new(h, t[i].name, json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtype_table[t[i].dtype].name, "shape", shape,
                                                     "data_offsets", (json_int_t)off, (json_int_t)(off + nb)));
        off += nb;
    }
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
    uint8_t hdr[8];
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(hdr, 1, 8, f) == 8 && fwrite(text, 1, len, f) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    free(text);
    return ok ? 0 : -1;
}

int st_write_file(const char *path, const st_write_tensor *t, int n, char *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return v4c_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int ok = st_write_header(f, t, n) == 0;
    for (int i = 0; ok && i < n; i++) {
        size_t nb = st_tensor_bytes(&t[i]);
        ok = fwrite(t[i].data, 1, nb, f) == nb;
    }
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : v4c_fail(err, "%s: write failed", path);
}
