#!/usr/bin/env bash
# Kernel throughput alone (bench/kernel_bench.c): GEMV GB/s by weight kind
# with the weights in cache and in memory, GEMM GFLOP/s at prefill-like
# token counts; one thread, then all. Run on a quiet machine.
# usage: bench/kernel_bench.sh [BUILD_DIR] [gemv|gemm|streams|tokens [KIND [N]]|decode [panels]]   (default: build, all but streams
#        and tokens; streams: the stream kernels against the batch ones, alternating; tokens: GFLOP/s
#        at 1-8 tokens (a server's batches) in L2 and from memory; both all threads only)
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
mode=${2:-}
if [ "$mode" = streams ] || [ "$mode" = tokens ] || [ "$mode" = decode ]; then "$out/kernel_bench" "$mode" ${3:-} ${4:-}; exit 0; fi
echo "== 1 thread"; OMP_NUM_THREADS=1 "$out/kernel_bench" $mode
echo "== $(nproc) threads"; "$out/kernel_bench" $mode
