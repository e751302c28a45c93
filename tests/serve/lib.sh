# Shared by the serve_* test scripts: a temp dir, a random model with the V4
# tokenizer, a server on a free loopback port, JSON helpers.
set -euo pipefail
V4C=$1 TOKENIZER=$2
# The machine may be shared: OpenMP threads that spin while waiting make
# every forward crawl when the cores are oversubscribed.
export OMP_WAIT_POLICY=passive
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
  for p in "${SERVER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
jget() { node "$HERE/json.js" "$1"; } # jget EXPR < json

make_model() { "$V4C" gen-model --vocab 129280 --tokenizer "$TOKENIZER" -o "$tmp/model" >/dev/null; }

# start_server NAME [serve options]: sets PORT and PID; log in $tmp/NAME.log
start_server() {
  local name=$1
  shift
  "$V4C" serve -m "$tmp/model" --port 0 "$@" >"$tmp/$name.log" 2>&1 &
  PID=$!
  SERVER_PIDS+=("$PID")
  PORT=
  for _ in $(seq 1 200); do
    PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/$name.log" | head -1 | sed 's/.*://' || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$tmp/$name.log"; fail "server $name exited"; }
    sleep 0.1
  done
  cat "$tmp/$name.log"
  fail "server $name did not start"
}

# stop_server PID NAME: SIGTERM, and it must exit cleanly (0; under ASan: no leaks)
stop_server() {
  kill -TERM "$1"
  local rc=0
  wait "$1" || rc=$?
  [ "$rc" = 0 ] || { cat "$tmp/$2.log"; fail "server $2 exited with $rc"; }
}
