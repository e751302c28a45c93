#!/usr/bin/env bash
# Kernel throughput alone (bench/kernel_bench.c): GEMV GB/s by weight kind
# with the weights in cache and in memory, GEMM GFLOP/s at prefill-like
# token counts; one thread, then all. Run on a quiet machine.
# usage: bench/kernel_bench.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target v4c_core >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -fopenmp -Iinclude -Isrc bench/kernel_bench.c "$build/libv4c_core.a" \
    $(pkg-config --libs jansson libpcre2-8 openblas) -lm -o "$out/kernel_bench"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "== 1 thread"; OMP_NUM_THREADS=1 "$out/kernel_bench"
echo "== $(nproc) threads"; "$out/kernel_bench"
