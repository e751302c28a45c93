/* Random checkpoints in the official layout, for tests and benchmarks:
 * every tensor the model binds, with the config's names, dtypes and shapes
 * (those of the released checkpoints, shared/golden/inventory). Written
 * tensor by tensor, so models of real size (GBs) stream to disk. */
#ifndef V4C_GENERATE_H
#define V4C_GENERATE_H

#include <stdint.h>

#include "formats/safetensors.h"
#include "v4c.h"

typedef struct {
    int fp8;        /* FP8 matrices + FP4 routed experts (else BF16) */
    uint64_t seed;
    int n_shards;   /* > 1: model-0000k-of-0000n.safetensors + index; 0: about 4 GB each */
} gen_params;

/* Named configurations: "tiny" (every V4 feature, small), "flash", "pro"
 * (the released models' dimensions). Returns 0, or -1 for an unknown name. */
int model_preset(const char *name, v4c_config *c);

/* The tensors a checkpoint of c holds, in file order (names owned by the
 * caller: free with gen_free_specs). */
int gen_list_tensors(const v4c_config *c, int fp8, st_write_tensor **out);
void gen_free_specs(st_write_tensor *t, int n);

/* Write config.json and the weights of c into dir (which must exist). */
int generate_model(const v4c_config *c, const gen_params *p, const char *dir, char *err);

#endif
