#!/usr/bin/env bash
# Decode at batch 1 on the Flash-shaped bench model, several runs, the
# builds given alternating (the machine's memory speed drifts from minute
# to minute on a shared VM: one run says little, and an A/B only means
# something run by run). Each run measures the machine's read bandwidth
# itself, before and after its tokens (`v4c bench`); the fraction is
# decode GB/s over that. Ends with each build's median, worst and best.
# usage: bench/decode_runs.sh [ROUNDS] [BUILD_DIR...]   (default 6, build)
#        env N: decoded tokens a run (48); MODEL: the bench model
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}
shift || true
builds=("$@")
[ ${#builds[@]} -eq 0 ] && builds=(build)
model=${MODEL:-bench/data/flash-4l-64e}
if [ ! -f "$model/config.json" ]; then
  build/v4c gen-model --preset flash --layers 4 --experts 64 -o "$model" >/dev/null
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; model $model"
runs=()
for r in $(seq 1 "$rounds"); do
  for b in "${builds[@]}"; do
    j=$("$b/v4c" bench -m "$model" -p 0 -n "${N:-48}" --json)
    runs+=("$b $j")
    node -e '
const [b, j] = [process.argv[1], JSON.parse(process.argv[2])];
console.log(`${b}: ${j.decode_tok_s.toFixed(2)} tok/s, ${j.decode_gb_s.toFixed(1)} GB/s, read ${j.machine_read_gb_s.toFixed(1)} ` +
  `(${j.machine_read_gb_s_before.toFixed(1)} before, ${j.machine_read_gb_s_after.toFixed(1)} after): ${(100 * j.decode_gb_s / j.machine_read_gb_s).toFixed(1)}%`)' "$b" "$j"
  done
done
printf '%s\n' "${runs[@]}" | node -e '
const lines = require("fs").readFileSync(0, "utf8").trim().split("\n"), by = {};
for (const l of lines) { const i = l.indexOf(" "), j = JSON.parse(l.slice(i + 1)); (by[l.slice(0, i)] ||= []).push(j); }
for (const [b, js] of Object.entries(by)) {
  const f = js.map((j) => 100 * j.decode_gb_s / j.machine_read_gb_s).sort((x, y) => x - y), t = js.map((j) => j.decode_tok_s).sort((x, y) => x - y);
  const med = (a) => a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
  console.log(`${b}: ${js.length} runs, decode ${med(t).toFixed(2)} tok/s median (${t[0].toFixed(2)}-${t[t.length - 1].toFixed(2)}), ` +
    `of the read ${med(f).toFixed(1)}% median (${f[0].toFixed(1)}-${f[f.length - 1].toFixed(1)}), ${f.filter((x) => x >= 80).length} of ${f.length} at 80% or more`);
}'
