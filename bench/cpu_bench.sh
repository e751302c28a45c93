#!/usr/bin/env bash
# The CPU benchmarks of BENCHMARKS.md ("CPU speed"): decode and prefill on a
# generated Flash-shaped model, and decode speed against context length on
# the tiny preset. Run on a quiet machine: other processes skew every number.
# usage: bench/cpu_bench.sh [OUT_DIR]    (models are generated under OUT_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null # builds (or rebuilds) build/v4c
out=${1:-bench/data}
mkdir -p "$out"
flash="$out/flash-4l-64e"
if [ ! -f "$flash/config.json" ]; then
  # Flash dimensions (hidden 4096, 64 heads x 512, FP8 attention, FP4 experts
  # 2048 wide, full 129280 vocabulary): layers 0-3 = two window-only hash
  # layers, CSA, HCA; 64 of the 256 experts so the model (~6 GB) stays in
  # the page cache while being far larger than the CPU caches.
  build/v4c gen-model --preset flash --layers 4 --experts 64 -o "$flash"
fi
cat "$flash"/*.safetensors > /dev/null # warm the page cache
echo "== decode and prefill, Flash-shaped model"
build/v4c bench -m "$flash" -p 512 -n 16
build/v4c bench -m "$flash" -p 512 -n 16 --json > "$out/flash.json"

tiny="$out/tiny"
[ -f "$tiny/config.json" ] || build/v4c gen-model --preset tiny -o "$tiny" >/dev/null
echo "== decode against context length, tiny preset"
for ctx in 1024 16384 65536; do
  build/v4c bench -m "$tiny" --context "$ctx" -p 0 -n 64 --json | tee "$out/tiny-ctx$ctx.json"
done
