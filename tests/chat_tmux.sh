#!/usr/bin/env bash
# chat_tmux.sh V4C TOKENIZER_JSON: drive `v4c chat` through a pseudo-terminal
# (tmux send-keys / capture-pane) for a two-turn conversation on a random
# model with the V4 vocabulary, then /save and /exit.
set -euo pipefail
v4c=$1 tokenizer=$2
command -v tmux >/dev/null || { echo "tmux is not installed"; exit 1; }
tmp=$(mktemp -d)
sock="$tmp/tmux.sock"
trap 'tmux -S "$sock" kill-server 2>/dev/null || true; tmux -S "$tmp/tmux.sock" kill-server 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$v4c" gen-model --vocab 129280 --tokenizer "$tokenizer" -o "$tmp/model" >/dev/null
tmux -S "$sock" new-session -d -x 200 -y 50 "'$v4c' chat -m '$tmp/model' -n 6 --seed 7 -v --thinking 2>&1; echo CHAT-EXITED \$?; sleep 30"

screen() { tmux -S "$sock" capture-pane -p -J -S -200; }
wait_for() { # pattern, count: wait until the screen shows pattern count times
  for _ in $(seq 1 1200); do
    [ "$(screen | grep -c -- "$1" || true)" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$1' x$2; screen:"; screen; exit 1
}
wait_for '^> ' 1
tmux -S "$sock" send-keys 'What is the capital of France?' Enter
wait_for 'generated' 1
wait_for '^> ' 2
tmux -S "$sock" send-keys 'And of Italy? \' Enter 'Answer briefly.' Enter
wait_for 'generated' 2
wait_for '^> ' 3
tmux -S "$sock" send-keys "/save $tmp/conv" Enter
wait_for 'saved' 1
tmux -S "$sock" send-keys '/exit' Enter
wait_for 'CHAT-EXITED 0' 1
out=$(screen)
echo "$out"
# Reasoning (thinking mode; random weights never close it) is shown dimmed.
tmux -S "$sock" capture-pane -p -e -S -200 | grep -q $'\e\\[2m'
# Two answers; the second turn reused the cache of the first.
echo "$out" | grep -Eq '\[[0-9]+ prompt tokens prefilled \(0 cached\), 6 generated'
echo "$out" | grep -Eq '\[[0-9]+ prompt tokens prefilled \([1-9][0-9]* cached\), 6 generated'
# The conversation was saved: two user and two assistant messages.
[ "$(grep -c '"role": "user"' "$tmp/conv.json")" = 2 ]
[ "$(grep -c '"role": "assistant"' "$tmp/conv.json")" = 2 ]
grep -q 'And of Italy? ' "$tmp/conv.json"
[ -s "$tmp/conv" ]

# Ctrl-C stops the current answer, not the program. (A fresh tmux server on
# its own socket: reusing the socket races with the old server's exit.)
tmux -S "$sock" kill-server 2>/dev/null || true
sock="$tmp/tmux2.sock"
tmux -S "$sock" new-session -d -x 200 -y 50 "'$v4c' chat -m '$tmp/model' -n 1000000 --seed 7 -v 2>&1; echo CHAT-EXITED \$?; sleep 30"
wait_for '^> ' 1
tmux -S "$sock" send-keys 'Tell me a very long story.' Enter
sleep 1
tmux -S "$sock" send-keys C-c
wait_for '\[stopped\]' 1
wait_for '^> ' 2
tmux -S "$sock" send-keys '/exit' Enter
wait_for 'CHAT-EXITED 0' 1
echo "chat via tmux: OK"
