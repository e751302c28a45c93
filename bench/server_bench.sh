#!/usr/bin/env bash
# Server load benchmark (not part of ctest): `v4c serve --parallel 8` on a
# random model with the V4 tokenizer (by default two layers of the Flash
# shapes with 16 experts, 3.2 GB: decode then reads its weights from
# memory, as a real model's does); first ONE streaming client, then 8
# concurrent streaming clients, each for SECONDS (default 60), sending
# /v1/completions requests of MAX_TOKENS (default 64, temperature 0.8) back to back.
# Batching works when the 8 clients' aggregate decode tokens/s is well above
# the single client's (target: >= 3x). Loopback only. With ROUNDS=R the two
# loads alternate R times, SECONDS each, and the speed-up is that of the
# totals: this machine's memory speed changes from minute to minute, and
# one load measured in a fast phase against the other in a slow one said
# more about the phases than about batching.
# usage: bench/server_bench.sh [SECONDS] [MAX_TOKENS] [TEMPERATURE]   (V4C=path: use that binary, no build;
#        GEN_ARGS="...": gen-model's options for the model, default "--preset flash --layers 2 --experts 16";
#        GEN_ARGS="": a small random model (hidden 128, 4 layers), about 1 ms a step;
#        ROUNDS=R: alternate the loads R times, default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60} max=${2:-64} temp=${3:-0.8}
[ -n "${OMP_WAIT_POLICY:-}" ] && export OMP_WAIT_POLICY
if [ -z "${V4C:-}" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j2 --target v4c >/dev/null
  V4C=build/v4c
fi
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
gen_args=${GEN_ARGS---preset flash --layers 2 --experts 16}
# shellcheck disable=SC2086 # GEN_ARGS is a list of options
"$V4C" gen-model $gen_args --vocab 129280 --tokenizer tests/data/tokenizer/deepseek-v4-tokenizer.json -o "$tmp/model" >/dev/null
"$V4C" serve -m "$tmp/model" --port 0 --parallel 8 >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$tmp/log" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/log" | sed 's/.*://')
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(node --version)"
# the engine alone: batched decode steps without the server
lib=$(dirname "$V4C")/libv4c_core.a
if [ -f "$lib" ]; then
  gcc -O2 -fopenmp -Iinclude -Isrc bench/server_batch_forward.c "$lib" $(pkg-config --libs jansson libpcre2-8 libmicrohttpd openblas) -lm -o "$tmp/bf"
  "$tmp/bf" "$tmp/model"
fi
rounds=${ROUNDS:-1}
ones=() eights=()
for r in $(seq 1 "$rounds"); do
  one=$(node bench/server_load.js "$port" 1 "$secs" "$max" "$temp")
  echo "1 client:  $one"
  eight=$(node bench/server_load.js "$port" 8 "$secs" "$max" "$temp")
  echo "8 clients: $eight"
  ones+=("$one") eights+=("$eight")
done
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^v4c_(generations_total|request_errors_total|forwards_total|forward_seconds_total)'
node -e '
const runs = process.argv.slice(1).map((j) => JSON.parse(j)), half = runs.length / 2;
const sum = (rs) => rs.reduce((a, r) => ({ tokens: a.tokens + r.tokens, seconds: a.seconds + r.seconds, errors: a.errors + r.errors }), { tokens: 0, seconds: 0, errors: 0 });
const a = sum(runs.slice(0, half)), b = sum(runs.slice(half)), ra = a.tokens / a.seconds, rb = b.tokens / b.seconds;
console.log(`speed-up: ${(rb / ra).toFixed(2)}x (${rb.toFixed(1)} vs ${ra.toFixed(1)} tok/s over ${half} round${half > 1 ? "s" : ""}); errors: ${a.errors + b.errors}`)' "${ones[@]}" "${eights[@]}"
kill -TERM "$pid"
wait "$pid"
pid=
