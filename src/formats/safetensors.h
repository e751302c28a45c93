/* Safetensors files (single file or shards with an index), memory-mapped or,
 * when they fit in half of RAM, read into huge pages (safetensors.c says
 * why). The header JSON is parsed once; tensor data stays in place. */
#ifndef V4C_SAFETENSORS_H
#define V4C_SAFETENSORS_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "formats/dtype.h"

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    v4c_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;
    size_t nbytes;
    int file;  /* index into st_set.files */
    int used;  /* set by the model binder; unused tensors are counted */
    int packed; /* rearranged in place by the model binder (weights.c: pack_quantized) */
} st_tensor;

typedef struct {
    char *path;
    void *map;       /* the file's bytes: its mapping, or a copy in huge pages */
    size_t size;     /* of the file */
    size_t map_size; /* bytes to unmap */
    int copied;      /* map is the copy in huge pages: ours, writable */
} st_file;

typedef struct {
    st_file *files;
    int n_files;
    st_tensor *tensors; /* sorted by name */
    int n_tensors;
} st_set;

/* Open `dir`/model.safetensors.index.json and its shards, or else
 * `dir`/model.safetensors. Returns 0 or -1 with err naming the file. */
int st_open_dir(st_set *set, const char *dir, char *err);
/* Open one file (used by the directory loader and by tests). */
int st_open_file(st_set *set, const char *path, char *err);
void st_close(st_set *set);

st_tensor *st_find(const st_set *set, const char *name);


/* Writing: one tensor to be stored. */
typedef struct {
    const char *name;
    v4c_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes */
} st_write_tensor;

/* Write a safetensors file (header padded to 8 bytes, tensors in the order
 * given). Returns 0 or -1 with err. */
int st_write_file(const char *path, const st_write_tensor *t, int n, char *err);
/* Streaming: the header for tensors t (data unused), to be followed by
 * exactly their bytes in order. 0 or -1 on a write error. */
int st_write_header(FILE *f, const st_write_tensor *t, int n);
size_t st_tensor_bytes(const st_write_tensor *t);
#endif
