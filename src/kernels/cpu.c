#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"

int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
}

int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static const kernel_backend *active;

void kernel_backend_set(const kernel_backend *b) { active = b; }

const kernel_backend *kernel_backend_active(void) {
    if (active) return active;
    const char *env = getenv("V4C_KERNELS");
    const kernel_backend *b = &backend_ref;
    if (env && !strcmp(env, "ref")) b = &backend_ref;
    else if (env && !strcmp(env, "avx2") && cpu_has_avx2()) b = &backend_avx2;
    else if (env && !strcmp(env, "avx512-exact") && cpu_has_avx512()) b = &backend_avx512;
    else if (dot_supported()) b = &backend_avx512_fast;
    else if (cpu_has_avx512()) b = &backend_avx512;
    else if (cpu_has_avx2()) b = &backend_avx2;
    active = b; /* benign race: every thread computes the same answer */
    return b;
}
