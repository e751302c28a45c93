#!/usr/bin/env bash
# golden_case.sh V4C GOLDEN_COMPARE CASE_DIR BATCH
# Runs a golden case through `v4c logits` (prompt prefilled in chunks of
# BATCH tokens, 0 = all at once; then the decode ids one at a time, with the
# MTP block) and compares both outputs with the case's tolerance.
set -euo pipefail
v4c=$1 cmp=$2 dir=$3 batch=$4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
prompt=$("$cmp" ids "$dir/case.json" prompt_ids)
decode=$("$cmp" ids "$dir/case.json" decode_ids)
mtp=$("$cmp" ids "$dir/case.json" mtp_ids)
args=(-m "$dir" --prompt "$prompt" --then "$decode" --mtp-next "$mtp" -o "$out/logits.f32" --mtp-o "$out/mtp.f32")
[ "$batch" != 0 ] && args+=(--batch "$batch")
"$v4c" logits "${args[@]}"
"$cmp" "$dir/case.json" logits "$out/logits.f32"
"$cmp" "$dir/case.json" mtp_logits "$out/mtp.f32"
