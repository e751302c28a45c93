#!/usr/bin/env bash
# The FP8-in-panels prototype (bench/fp8_panels.c) against the library's
# kernels, at 1, 2, 4 and 8 tokens, from memory on all threads.
# usage: bench/fp8_panels.sh [BUILD_DIR] [COPIES]   (default: build, 8 copies of 32 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
copies=${2:-8}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target v4c_core >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -Wall -Wextra -fopenmp -Iinclude -Isrc bench/fp8_panels.c "$build/libv4c_core.a" \
    $(pkg-config --libs jansson libpcre2-8 openblas) -lm -o "$out/fp8_panels"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
for n in 1 2 4 8; do "$out/fp8_panels" "$copies" "$n"; done
