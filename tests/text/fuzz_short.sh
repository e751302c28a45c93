#!/bin/sh
# Short libFuzzer run of the text fuzz targets (8 s each, under 30 s total).
# Build first:
#   cmake -B build-fuzz -S . -DCMAKE_C_COMPILER=clang -DV4C_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_tokenizer fuzz_completion_parse fuzz_chat_encode
# usage: tests/text/fuzz_short.sh [BUILD_DIR] [SECONDS_PER_TARGET]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-fuzz}
SECONDS_EACH=${2:-8}
SEEDS=$ROOT/tests/text/fuzz/seeds
WORK=$(mktemp -d)
ARTIFACTS=$BUILD/fuzz-artifacts
mkdir -p "$ARTIFACTS"
trap 'rm -rf "$WORK"' EXIT

run() { # name seed-dir...
    name=$1
    shift
    mkdir -p "$WORK/$name"
    for dir in "$@"; do cp "$dir"/* "$WORK/$name/"; done
    echo "== $name ($SECONDS_EACH s)"
    "$BUILD/tests/text/fuzz/$name" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" "$WORK/$name" 2>"$WORK/$name.log" || {
        tail -50 "$WORK/$name.log"
        echo "FAIL: $name (reproducer in $ARTIFACTS)"
        exit 1
    }
    grep -E "stat::number_of_executed_units|Done" "$WORK/$name.log" | tail -2
}

run fuzz_tokenizer "$SEEDS/tokenizer"
run fuzz_completion_parse "$SEEDS/completion"
run fuzz_chat_encode "$ROOT/tests/data/encoding"
echo "fuzz: no crash, leak or mismatch"
