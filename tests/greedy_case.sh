#!/usr/bin/env bash
# greedy_case.sh V4C GOLDEN_COMPARE CASE_DIR [run options...]
# `v4c run --temp 0 -n 16 --print-ids` must print the reference's greedy
# continuation, up to and including the first EOS (id 1) where one occurs.
set -euo pipefail
v4c=$1 cmp=$2 dir=$3
shift 3
prompt=$("$cmp" ids "$dir/case.json" prompt_ids)
want=$("$cmp" ids "$dir/case.json" greedy_ids | awk -F, '{ out = $1; for (i = 2; i <= NF && $(i-1) != 1; i++) out = out "," $i; print out }')
[ "$("$cmp" ids "$dir/case.json" greedy_ids | cut -d, -f1)" = 1 ] && want=1
got=$("$v4c" run -m "$dir" --prompt-ids "$prompt" -n 16 --temp 0 --print-ids "$@")
echo "want: $want"
echo "got:  $got"
[ "$got" = "$want" ]
