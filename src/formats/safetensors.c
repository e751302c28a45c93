#include "formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "util/workmem.h"

/* Safetensors: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data area; offsets are relative to its start. */
static int parse_header(st_set *set, int fi, const char *path, const uint8_t *map, size_t size, char *err) {
    if (size < 8) return v4c_fail(err, "%s: truncated file (%zu bytes, no header length)", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | map[i];
    if (hlen > size - 8) return v4c_fail(err, "%s: truncated file: header length %llu exceeds file size %zu", path, (unsigned long long)hlen, size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)map + 8, hlen, 0, &jerr);
    if (!root) return v4c_fail(err, "%s: header JSON does not parse: %s (line %d, column %d)", path, jerr.text, jerr.line, jerr.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return v4c_fail(err, "%s: header JSON is not an object", path);
    }
    const uint8_t *data = map + 8 + hlen;
    size_t data_size = size - 8 - hlen;
    size_t n_new = json_object_size(root);
    set->tensors = xrealloc(set->tensors, (set->n_tensors + n_new) * sizeof(st_tensor));
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"), *jo = json_object_get(val, "data_offsets");
        if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2) {
            rc = v4c_fail(err, "%s: tensor %s: header entry needs dtype, shape and data_offsets [begin, end]", path, key);
            break;
        }
        int dt = dtype_from_name(json_string_value(jd));
        if (dt < 0) {
            rc = v4c_fail(err, "%s: tensor %s: unknown dtype '%s'", path, key, json_string_value(jd));
            break;
        }
        st_tensor t = {0};
        t.dtype = (v4c_dtype)dt;
        t.ndim = (int)json_array_size(js);
        if (t.ndim > ST_MAX_DIMS) {
            rc = v4c_fail(err, "%s: tensor %s: %d dimensions (at most %d supported)", path, key, t.ndim, ST_MAX_DIMS);
            break;
        }
        t.numel = 1;
        for (int d = 0; d < t.ndim; d++) {
            json_t *e = json_array_get(js, d);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > ((int64_t)1 << 40)) {
                rc = v4c_fail(err, "%s: tensor %s: shape entry %d is not a valid size", path, key, d);
                break;
            }
            t.shape[d] = json_integer_value(e);
            t.numel *= t.shape[d];
        }
        if (rc) break;
        json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
        if (!json_is_integer(jb) || !json_is_integer(je)) {
            rc = v4c_fail(err, "%s: tensor %s: data_offsets are not integers", path, key);
            break;
        }
        int64_t b = json_integer_value(jb), e = json_integer_value(je);
        if (b < 0 || e < b) {
            rc = v4c_fail(err, "%s: tensor %s: bad data_offsets [%lld, %lld]", path, key, (long long)b, (long long)e);
            break;
        }
        if ((uint64_t)e > data_size) {
            rc = v4c_fail(err, "%s: truncated file: tensor %s ends at byte %lld of the data area, which holds %zu", path, key, (long long)e, data_size);
            break;
        }
        if ((uint64_t)(e - b) != (uint64_t)t.numel * dtype_table[t.dtype].size) {
            rc = v4c_fail(err, "%s: tensor %s: %lld bytes for %lld elements of %s", path, key, (long long)(e - b), (long long)t.numel, dtype_table[t.dtype].name);
            break;
        }
        t.name = xstrdup(key);
        t.data = data + b;
        t.nbytes = (size_t)(e - b);
        t.file = fi;
        set->tensors[set->n_tensors++] = t;
    }
    json_decref(root);
    return rc;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int add_file(st_set *set, const char *path, char *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return v4c_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return v4c_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return v4c_fail(err, "%s: cannot map: %s", path, strerror(errno));
        }
    }
    close(fd);
    int fi = set->n_files++;
    set->files = xrealloc(set->files, set->n_files * sizeof(st_file));
    set->files[fi] = (st_file){xstrdup(path), map, size, size, 0};
    return parse_header(set, fi, path, map, size, err);
}

static int finish(st_set *set, char *err) {
    qsort(set->tensors, set->n_tensors, sizeof(st_tensor), by_name);
    for (int i = 1; i < set->n_tensors; i++)
        if (!strcmp(set->tensors[i].name, set->tensors[i - 1].name))
            return v4c_fail(err, "tensor %s appears twice (%s and %s)", set->tensors[i].name,
                            set->files[set->tensors[i - 1].file].path, set->files[set->tensors[i].file].path);
    return 0;
}

int st_open_file(st_set *set, const char *path, char *err) {
    memset(set, 0, sizeof *set);
    if (add_file(set, path, err) || finish(set, err)) {
        st_close(set);
        return -1;
    }
    return 0;
}

/* Shards named by model.safetensors.index.json's weight_map; every tensor
 * the index names must be in the shard it names. */
static int open_index(st_set *set, const char *dir, const char *index_path, char *err) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, 0, &jerr);
    if (!root) return v4c_fail(err, "%s: JSON does not parse: %s (line %d, column %d)", index_path, jerr.text, jerr.line, jerr.column);
    json_t *map = json_object_get(root, "weight_map");
    int rc = 0;
    if (!json_is_object(map)) {
        json_decref(root);
        return v4c_fail(err, "%s: missing object 'weight_map'", index_path);
    }
    const char *name;
    json_t *v;
    char **shards = NULL;
    int n_shards = 0;
    json_object_foreach(map, name, v) {
        if (!json_is_string(v)) {
            rc = v4c_fail(err, "%s: weight_map entry %s is not a file name", index_path, name);
            break;
        }
        const char *f = json_string_value(v);
        if (strchr(f, '/')) {
            rc = v4c_fail(err, "%s: weight_map entry %s names '%s' outside the model directory", index_path, name, f);
            break;
        }
        int seen = 0;
        for (int i = 0; i < n_shards && !seen; i++) seen = !strcmp(shards[i], f);
        if (!seen) {
            shards = xrealloc(shards, (n_shards + 1) * sizeof(char *));
            shards[n_shards++] = xstrdup(f);
        }
    }
    for (int i = 0; i < n_shards && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, shards[i]);
        rc = add_file(set, path, err);
    }
    if (!rc) rc = finish(set, err);
    if (!rc) {
        json_object_foreach(map, name, v) {
            st_tensor *t = st_find(set, name);
            if (!t) {
                rc = v4c_fail(err, "%s: tensor %s is listed in the index but missing from %s", index_path, name, json_string_value(v));
                break;
            }
            const char *base = strrchr(set->files[t->file].path, '/');
            if (strcmp(base ? base + 1 : set->files[t->file].path, json_string_value(v))) {
                rc = v4c_fail(err, "%s: tensor %s is listed in %s but found in %s", index_path, name, json_string_value(v), set->files[t->file].path);
                break;
            }
        }
    }
    for (int i = 0; i < n_shards; i++) free(shards[i]);
    free(shards);
    json_decref(root);
    return rc;
}

/* Models that fit comfortably in memory (half of RAM) are read into
 * anonymous memory backed by transparent huge pages instead of being used
 * through the file mapping. Page-cache pages are mapped 4 KB at a time;
 * streaming the weights once per token then costs a page walk every 4 KB,
 * and on virtual machines with shadow page tables far more: on this
 * project's CI machine a populated 3.6 GB shard mapping read at 4-30 GB/s
 * and the same bytes in huge pages at 51-69 GB/s. Larger models stay
 * lazily mapped, as does everything when V4C_MMAP=1. Best effort: a file
 * that cannot be copied keeps its mapping. */
static int copy_to_huge_pages(st_file *f) {
    size_t len;
    uint8_t *buf = huge_map(f->size, &len);
    if (!buf) return -1;
    int fd = open(f->path, O_RDONLY);
    size_t done = 0;
    while (fd >= 0 && done < f->size) {
        size_t chunk = f->size - done < ((size_t)64 << 20) ? f->size - done : ((size_t)64 << 20);
        ssize_t n = pread(fd, buf + done, chunk, (off_t)done);
        if (n <= 0 && errno != EINTR) break;
        if (n > 0) done += (size_t)n;
    }
    if (fd >= 0) close(fd);
    if (done != f->size || memcmp(buf, f->map, f->size < 4096 ? f->size : 4096)) { /* changed under us: keep the mapping */
        munmap(buf, len);
        return -1;
    }
    /* Left writable: on this project's VM (shadow page tables) the first
     * pass over memory made read-only afterwards paid for every page again;
     * prefill of 512 tokens on the Flash-shaped model (the first pass),
     * alternating: faster or equal in all 6 pairs, 102-138 -> 125-142
     * tok/s. Nothing writes the weights; the tensors are const. */
    munmap(f->map, f->size);
    f->map = buf, f->map_size = len, f->copied = 1;
    return 0;
}

static void load_resident(st_set *set) {
    const char *env = getenv("V4C_MMAP");
    if (env && !strcmp(env, "1")) return;
    size_t total = 0;
    for (int i = 0; i < set->n_files; i++) total += set->files[i].size;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0 || total > (size_t)pages * (size_t)page / 2) return;
    for (int i = 0; i < set->n_files; i++) {
        st_file *f = &set->files[i];
        const uint8_t *old = f->map;
        if (!f->map || !f->size || copy_to_huge_pages(f)) continue;
        for (int k = 0; k < set->n_tensors; k++)
            if (set->tensors[k].file == i) set->tensors[k].data = (const uint8_t *)f->map + ((const uint8_t *)set->tensors[k].data - old);
    }
}

int st_open_dir(st_set *set, const char *dir, char *err) {
    memset(set, 0, sizeof *set);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    int rc;
    if (access(path, F_OK) == 0) {
        rc = open_index(set, dir, path, err);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (access(path, F_OK) != 0) return v4c_fail(err, "%s: no model.safetensors or model.safetensors.index.json", dir);
        rc = add_file(set, path, err);
        if (!rc) rc = finish(set, err);
    }
    if (rc) st_close(set);
    else load_resident(set);
    return rc;
}

void st_close(st_set *set) {
    for (int i = 0; i < set->n_tensors; i++) free(set->tensors[i].name);
    for (int i = 0; i < set->n_files; i++) {
        if (set->files[i].map) munmap(set->files[i].map, set->files[i].map_size);
        free(set->files[i].path);
    }
    free(set->tensors);
    free(set->files);
    memset(set, 0, sizeof *set);
}

st_tensor *st_find(const st_set *set, const char *name) {
    st_tensor key = {.name = (char *)name};
    return bsearch(&key, set->tensors, set->n_tensors, sizeof(st_tensor), by_name);
}
