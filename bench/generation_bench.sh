#!/usr/bin/env bash
# Decode tokens/s with and without MTP speculative decoding, and the MTP
# acceptance rate, on a generated (random-weight) model.
# usage: bench/generation_bench.sh [MODEL_DIR]   (default: a generated one)
set -euo pipefail
cd "$(dirname "$0")/.."
v4c=build/v4c
[ -x "$v4c" ] || ./scripts/setup.sh >/dev/null
model=${1:-}
if [ -z "$model" ]; then
  model=bench/data/gen-model
  [ -f "$model/config.json" ] || "$v4c" gen-model --layers 8 --experts 32 --vocab 32000 --seed 3 -o "$model" >/dev/null
fi
prompt=$(seq -s, 2 2 200)
echo "model: $model"
for mode in "--temp 0" "--temp 1 --seed 5"; do
  for mtp in "" "--no-mtp"; do
    line=$("$v4c" run -m "$model" --prompt-ids "$prompt" -n 128 $mode $mtp --print-ids 2>&1 >/dev/null | tail -1)
    printf '%-22s %-9s %s\n' "$mode" "${mtp:-MTP}" "$line"
  done
done
