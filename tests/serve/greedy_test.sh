#!/usr/bin/env bash
# serve_greedy: greedy output through the server equals `v4c run --temp 0`
# for the same prompt — /v1/completions (several requests at once, so they
# share batched forward passes; one streamed) against `v4c run -p TEXT`, and
# chat against `v4c chat-template` + `v4c run --prompt-ids`, including
# requests that start from the prefix cache (shared system prompt, repeat).
# usage: greedy_test.sh V4C TOKENIZER_JSON
source "$(dirname "$0")/lib.sh"
make_model
start_server g --parallel 4
BASE=http://127.0.0.1:$PORT
N=10

# run_text OUT ARGS...: `v4c run` stdout without the newline it ends with
run_text() {
  local out=$1
  shift
  "$V4C" run -m "$tmp/model" --temp 0 --no-mtp "$@" 2>/dev/null | node -e 'let s=require("fs").readFileSync(0,"utf8"); process.stdout.write(s.endsWith("\n")?s.slice(0,-1):s)' >"$out"
}
same() { # same FILE_A FILE_B WHAT
  cmp -s "$1" "$2" || fail "$3: server '$(cat "$1")' != v4c run '$(cat "$2")'"
  echo "ok: $3"
}

prompts=("Hello world" "The quick brown fox" "Once upon a time, in a land far away" "1 2 3 4 5")
for i in "${!prompts[@]}"; do run_text "$tmp/want$i" -p "${prompts[$i]}" -n $N; done
for i in "${!prompts[@]}"; do
  node -e 'process.stdout.write(JSON.stringify({prompt: process.argv[1], max_tokens: +process.argv[2], temperature: 0}))' "${prompts[$i]}" $N >"$tmp/body$i.json"
done
pids=()
for i in "${!prompts[@]}"; do # all at once: they are decoded in the same forward passes
  curl -s -d @"$tmp/body$i.json" "$BASE/v1/completions" >"$tmp/resp$i.json" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
# they shared forward passes: alone, each needs N (a prefill and N-1 steps)
fw=$(curl -s "$BASE/metrics" | sed -n 's/^v4c_forwards_total //p')
[ "$fw" -lt $((${#prompts[@]} * N)) ] || fail "no batching: $fw forward passes for ${#prompts[@]} concurrent requests of $N tokens"
echo "ok: ${#prompts[@]} concurrent requests took $fw forward passes (one at a time: $((${#prompts[@]} * N)))"
for i in "${!prompts[@]}"; do
  jget 'j.choices[0].text' <"$tmp/resp$i.json" >"$tmp/got$i"
  same "$tmp/got$i" "$tmp/want$i" "completion '${prompts[$i]}'"
done
# streamed: the text deltas put together
curl -sN -d "{\"prompt\": \"Hello world\", \"max_tokens\": $N, \"temperature\": 0, \"stream\": true}" "$BASE/v1/completions" >"$tmp/sse.txt"
tail -c 20 "$tmp/sse.txt" | grep -q 'data: \[DONE\]' || fail "stream without [DONE]"
grep '^data: {' "$tmp/sse.txt" | sed 's/^data: //' | node -e 'const l=require("fs").readFileSync(0,"utf8").trim().split("\n"); process.stdout.write(l.map(x=>JSON.parse(x).choices[0].text).join(""))' >"$tmp/got_sse"
same "$tmp/got_sse" "$tmp/want0" "streamed completion"

# chat_case NAME MESSAGES_JSON MODE EXTRA_JSON FIELD: server vs chat-template + run
chat_case() {
  local name=$1 msgs=$2 mode=$3 extra=$4 field=$5
  local effort=()
  [ "$mode" = thinking ] && effort=(--reasoning-effort high)
  echo "$msgs" | "$V4C" chat-template --thinking-mode "$mode" "${effort[@]}" -t "$TOKENIZER" --ids >"$tmp/$name.ids"
  ids=$(jget 'j.ids.join(",")' <"$tmp/$name.ids")
  run_text "$tmp/$name.want" --prompt-ids "$ids" -n $N
  body=$(node -e 'process.stdout.write(JSON.stringify(Object.assign({messages: JSON.parse(process.argv[1]), max_tokens: +process.argv[2], temperature: 0}, JSON.parse(process.argv[3]))))' "$msgs" $N "$extra")
  curl -s -d "$body" "$BASE/v1/chat/completions" >"$tmp/$name.json"
  jget "j.choices[0].message.$field" <"$tmp/$name.json" >"$tmp/$name.got"
  same "$tmp/$name.got" "$tmp/$name.want" "chat $name ($field)"
  [ "$(jget 'j.usage.prompt_tokens' <"$tmp/$name.json")" = "$(jget 'j.ids.length' <"$tmp/$name.ids")" ] || fail "$name: usage.prompt_tokens"
  CACHED=$(jget 'j.usage.prompt_tokens_details.cached_tokens' <"$tmp/$name.json")
}
sys='{"role": "system", "content": "You are a terse assistant. Answer in one word."}'
chat_case color "[$sys, {\"role\": \"user\", \"content\": \"Name a color.\"}]" chat '{}' content
chat_case animal "[$sys, {\"role\": \"user\", \"content\": \"Name an animal.\"}]" chat '{}' content
[ "$CACHED" -gt 10 ] || fail "the shared system prompt was not reused (cached_tokens $CACHED)"
echo "ok: shared system prompt reused ($CACHED tokens)"
chat_case color_again "[$sys, {\"role\": \"user\", \"content\": \"Name a color.\"}]" chat '{}' content
[ "$CACHED" = $(($(jget 'j.ids.length' <"$tmp/color.ids") - 1)) ] || fail "a repeated prompt was not reused (cached_tokens $CACHED)"
echo "ok: repeated prompt reused ($CACHED tokens)"
# a second turn starts from the cache of the first answer
ans=$(cat "$tmp/color.got")
turn2=$(node -e 'process.stdout.write(JSON.stringify([JSON.parse(process.argv[1]), {role: "user", content: "Name a color."}, {role: "assistant", content: process.argv[2]}, {role: "user", content: "Another?"}]))' "$sys" "$ans")
chat_case turn2 "$turn2" chat '{}' content
echo "ok: second turn ($CACHED cached tokens)"
chat_case think "[{\"role\": \"user\", \"content\": \"Think about colors.\"}]" thinking '{"reasoning_effort": "high"}' reasoning_content
stop_server "$PID" g
echo "serve_greedy: OK"
