#!/usr/bin/env bash
# session_roundtrip.sh TEST_BIN MODEL: save a session mid-conversation, load
# it in a new process and continue; the logits must equal an uninterrupted run.
set -euo pipefail
bin=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" save "$model" "$tmp/s.session"
"$bin" continue "$model" "$tmp/s.session" "$tmp/resumed.f32"
"$bin" straight "$model" "$tmp/straight.f32"
cmp "$tmp/resumed.f32" "$tmp/straight.f32"
echo "resumed logits identical ($(stat -c %s "$tmp/resumed.f32") bytes)"
