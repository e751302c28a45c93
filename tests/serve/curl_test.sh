#!/usr/bin/env bash
# serve_curl: error cases, auth, limits, metrics and client disconnects,
# driven with curl against `v4c serve` on a loopback port.
# usage: curl_test.sh V4C TOKENIZER_JSON
source "$(dirname "$0")/lib.sh"
make_model
start_server main -c 512 --parallel 2 --max-body 4096
BASE=http://127.0.0.1:$PORT

# req NAME METHOD PATH [BODY]: response in $tmp/NAME.json, status in $STATUS
req() {
  local name=$1 method=$2 path=$3
  shift 3
  if [ $# -gt 0 ]; then
    STATUS=$(curl -s -o "$tmp/$name.json" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' --data-binary "$1" "$BASE$path")
  else
    STATUS=$(curl -s -o "$tmp/$name.json" -w '%{http_code}' -X "$method" "$BASE$path")
  fi
}
# expect_error NAME STATUS PARAM CODE METHOD PATH [BODY]
expect_error() {
  local name=$1 want=$2 param=$3 code=$4
  shift 4
  req "$name" "$@"
  [ "$STATUS" = "$want" ] || { cat "$tmp/$name.json"; fail "$name: status $STATUS, want $want"; }
  local shape
  shape=$(jget '[typeof j.error.message, typeof j.error.type, "param" in j.error, "code" in j.error].join()' <"$tmp/$name.json")
  [ "$shape" = "string,string,true,true" ] || fail "$name: not an OpenAI error object: $(cat "$tmp/$name.json")"
  [ "$(jget 'String(j.error.param)' <"$tmp/$name.json")" = "$param" ] || fail "$name: param $(jget 'j.error.param' <"$tmp/$name.json"), want $param"
  [ "$(jget 'String(j.error.code)' <"$tmp/$name.json")" = "$code" ] || fail "$name: code $(jget 'j.error.code' <"$tmp/$name.json"), want $code"
  echo "ok: $name -> $STATUS $(jget 'j.error.message' <"$tmp/$name.json")"
}

req health GET /health
[ "$STATUS" = 200 ] && [ "$(jget j.status <"$tmp/health.json")" = ok ] || fail "health"
req models GET /v1/models
[ "$(jget 'j.data[0].id' <"$tmp/models.json")" = model ] || fail "models: $(cat "$tmp/models.json")"

expect_error malformed 400 null invalid_json POST /v1/completions '{"prompt": "hi", '
expect_error not_object 400 null null POST /v1/chat/completions '["hi"]'
expect_error wrong_type 400 temperature null POST /v1/completions '{"prompt": "hi", "temperature": "warm"}'
expect_error wrong_type_msgs 400 messages null POST /v1/chat/completions '{"messages": "hi"}'
expect_error bad_role 400 messages null POST /v1/chat/completions '{"messages": [{"role": "wizard", "content": "hi"}]}'
expect_error unknown_model 404 model model_not_found POST /v1/chat/completions '{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}'
long=$(printf ' word%.0s' $(seq 1 600))
expect_error prompt_too_long 400 prompt context_length_exceeded POST /v1/completions "{\"prompt\": \"$long\"}"
expect_error too_many_tokens 400 max_tokens context_length_exceeded POST /v1/completions '{"prompt": "hi", "max_tokens": 100000}'
expect_error n_two 400 n null POST /v1/completions '{"prompt": "hi", "n": 2}'
big=$(head -c 5000 /dev/zero | tr '\0' a)
expect_error body_too_large 413 null request_too_large POST /v1/completions "{\"prompt\": \"$big\"}"
expect_error unknown_path 404 null not_found GET /v1/nothing
expect_error wrong_method 405 null method_not_allowed GET /v1/completions
expect_error empty_body 400 null invalid_json POST /v1/completions ''
# chunked upload over the limit (no Content-Length): refused at the end
STATUS=$(head -c 6000 /dev/zero | tr '\0' a | curl -s -o "$tmp/chunked.json" -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @- "$BASE/v1/completions")
[ "$STATUS" = 413 ] || fail "chunked body over the limit: $STATUS"
# invalid UTF-8 in a prompt, NUL bytes, deep nesting: 4xx, no crash
expect_error bad_utf8 400 null invalid_json POST /v1/completions "$(printf '{"prompt": "\xff\xfe"}')"
expect_error deep 400 null invalid_json POST /v1/completions "$(printf '[%.0s' $(seq 1 3000))"

# a good request, then stop strings: the greedy text cut before the stop string
req ok POST /v1/completions '{"prompt": "The weather today", "max_tokens": 12, "temperature": 0}'
[ "$STATUS" = 200 ] || fail "completion: $STATUS $(cat "$tmp/ok.json")"
text=$(jget 'j.choices[0].text' <"$tmp/ok.json")
[ "$(jget 'j.usage.completion_tokens' <"$tmp/ok.json")" = 12 ] || fail "usage: $(cat "$tmp/ok.json")"
stop=$(node -e 'const t=process.argv[1]; const a=[...t]; process.stdout.write(a.slice(Math.floor(a.length/2), Math.floor(a.length/2)+2).join(""))' "$text")
body=$(node -e 'process.stdout.write(JSON.stringify({prompt: "The weather today", max_tokens: 12, temperature: 0, stop: [process.argv[1]]}))' "$stop")
req stopped POST /v1/completions "$body"
want=$(node -e 'const t=process.argv[1]; process.stdout.write(t.slice(0, t.indexOf(process.argv[2])))' "$text" "$stop")
[ "$(jget 'j.choices[0].text' <"$tmp/stopped.json")" = "$want" ] || fail "stop '$stop': got '$(jget 'j.choices[0].text' <"$tmp/stopped.json")', want '$want'"
[ "$(jget 'j.choices[0].finish_reason' <"$tmp/stopped.json")" = stop ] || fail "stop finish_reason"
echo "ok: stop string"

# a client that disconnects mid-stream frees its slot
curl -sN -d '{"prompt": "Tell me a story", "max_tokens": 500, "stream": true}' "$BASE/v1/completions" >"$tmp/cut.txt" &
cut=$!
for _ in $(seq 1 300); do grep -q '^data: {' "$tmp/cut.txt" && break; sleep 0.02; done
kill "$cut" # hang up after the first tokens
wait "$cut" || true
grep -q '^data: {' "$tmp/cut.txt" || fail "the stream sent nothing before the disconnect"
for _ in $(seq 1 100); do
  curl -s "$BASE/metrics" >"$tmp/metrics.txt"
  grep -q '^v4c_generations_total{outcome="cancelled"} 1$' "$tmp/metrics.txt" && grep -q '^v4c_active_sequences 0$' "$tmp/metrics.txt" && break
  sleep 0.1
done
grep -q '^v4c_generations_total{outcome="cancelled"} 1$' "$tmp/metrics.txt" || { cat "$tmp/metrics.txt"; fail "the disconnected stream was not cancelled"; }
grep -q '^v4c_active_sequences 0$' "$tmp/metrics.txt" || fail "a slot is still busy"
gen=$(grep '^v4c_generated_tokens_total' "$tmp/metrics.txt" | cut -d' ' -f2)
[ "$gen" -lt 450 ] || fail "the cancelled stream ran on ($gen tokens)"
echo "ok: disconnect frees the slot ($gen tokens generated in all)"

# metrics: Prometheus text with the counters and gauges
for m in 'v4c_requests_total{endpoint="completions"}' v4c_queue_length v4c_decode_tokens_per_second 'v4c_cache_bytes{owner="prefix_cache"}' \
  v4c_prompt_tokens_cached_total 'v4c_request_errors_total{class="4xx"}'; do
  grep -qF "$m " "$tmp/metrics.txt" || fail "metrics: no $m"
done
grep -q '^# TYPE v4c_requests_total counter$' "$tmp/metrics.txt" || fail "metrics: no TYPE line"
[ "$(grep -F 'v4c_request_errors_total{class="4xx"}' "$tmp/metrics.txt" | cut -d' ' -f2)" -ge 15 ] || fail "4xx not counted"
echo "ok: metrics"
stop_server "$PID" main

# continuous batching: a short request started after a long one finishes
# while the long one goes on; a full queue answers 503
start_server slots --parallel 2 --max-queue 1
BASE=http://127.0.0.1:$PORT
metric() { curl -s "$BASE/metrics" | sed -n "s/^$1 //p"; }
until_metric() { # NAME VALUE: poll until the gauge reads VALUE
  for _ in $(seq 1 300); do [ "$(metric "$1")" = "$2" ] && return 0; sleep 0.05; done
  fail "$1 never became $2 (is $(metric "$1"))"
}
curl -sN -d '{"prompt": "long", "max_tokens": 3000, "stream": true}' "$BASE/v1/completions" >/dev/null 2>&1 &
long1=$!
until_metric v4c_active_sequences 1
req short POST /v1/completions '{"prompt": "short", "max_tokens": 4}'
[ "$STATUS" = 200 ] && [ "$(jget j.usage.completion_tokens <"$tmp/short.json")" = 4 ] || fail "short request: $STATUS"
[ "$(metric v4c_active_sequences)" = 1 ] || fail "the long request should still be running"
echo "ok: a short request came and went while a long one runs"
curl -sN -d '{"prompt": "long", "max_tokens": 3000, "stream": true}' "$BASE/v1/completions" >/dev/null 2>&1 &
long2=$!
until_metric v4c_active_sequences 2
curl -s -d '{"prompt": "queued", "max_tokens": 2}' "$BASE/v1/completions" >"$tmp/queued.json" &
queued=$!
until_metric v4c_queue_length 1
expect_error overloaded 503 null overloaded POST /v1/completions '{"prompt": "one too many", "max_tokens": 2}'
kill "$long1" # its slot goes to the queued request
wait "$queued"
[ "$(jget j.usage.completion_tokens <"$tmp/queued.json")" = 2 ] || fail "the queued request: $(cat "$tmp/queued.json")"
echo "ok: a freed slot goes to the waiting request"
kill "$long2"
until_metric v4c_active_sequences 0
stop_server "$PID" slots

# --api-key: 401 without the right bearer token (not for /health)
start_server auth --api-key s3cret
BASE=http://127.0.0.1:$PORT
expect_error no_key 401 null invalid_api_key GET /v1/models
STATUS=$(curl -s -o "$tmp/wrong.json" -w '%{http_code}' -H 'Authorization: Bearer nope' "$BASE/v1/models")
[ "$STATUS" = 401 ] || fail "wrong key: $STATUS"
STATUS=$(curl -s -o "$tmp/right.json" -w '%{http_code}' -H 'Authorization: Bearer s3cret' -d '{"prompt": "hi", "max_tokens": 2}' "$BASE/v1/completions")
[ "$STATUS" = 200 ] || fail "right key: $STATUS $(cat "$tmp/right.json")"
req health GET /health
[ "$STATUS" = 200 ] || fail "health needs no key"
echo "ok: api key"
# shutdown with requests in flight (streamed, whole, queued): a clean exit
for i in 1 2 3; do
  curl -sN -H 'Authorization: Bearer s3cret' -d '{"prompt": "go", "max_tokens": 3000, "stream": true}' "$BASE/v1/completions" >/dev/null 2>&1 &
  curl -s -H 'Authorization: Bearer s3cret' -d '{"prompt": "go", "max_tokens": 3000}' "$BASE/v1/completions" >/dev/null 2>&1 &
done
for _ in $(seq 1 100); do
  curl -s "$BASE/metrics" -H 'Authorization: Bearer s3cret' | grep -q '^v4c_active_sequences [1-9]' && break
  sleep 0.1
done
stop_server "$PID" auth
wait
echo "ok: shutdown with requests in flight"
echo "serve_curl: OK"
