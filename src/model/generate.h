/* Random checkpoints in the official layout, for tests and benchmarks:
 * every tensor the model binds, with the config's shapes. */
#ifndef V4C_GENERATE_H
#define V4C_GENERATE_H

#include <stdint.h>

#include "v4c.h"

typedef struct {
    int fp8;        /* FP8 matrices + FP4 routed experts (else BF16) */
    uint64_t seed;
    int n_shards;   /* > 1: model-0000k-of-0000n.safetensors + index */
} gen_params;

/* Write config.json and the weights of c into dir (which must exist). */
int generate_model(const v4c_config *c, const gen_params *p, const char *dir, char *err);

#endif
