#!/usr/bin/env bash
# serve_openai: the official `openai` npm client against `v4c serve`
# (installed on first use into the gitignored tests/serve/node_modules;
# skipped, exit 77, when npm cannot install it).
# usage: openai_test.sh V4C TOKENIZER_JSON
source "$(dirname "$0")/lib.sh"
if [ ! -f "$HERE/node_modules/openai/package.json" ]; then
  npm install --prefix "$HERE" --no-audit --no-fund --loglevel=error openai >/dev/null 2>&1 || { echo "cannot install the openai npm package: skipped"; exit 77; }
fi
make_model
# the tool round trip's prompt, encoded by `v4c chat-template`
cat >"$tmp/tools.json" <<'JSON'
{"messages": [
  {"role": "user", "content": "What is the weather in Paris?"},
  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
  {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"}],
 "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}
JSON
n_tool=$("$V4C" chat-template --thinking-mode chat -t "$TOKENIZER" --ids <"$tmp/tools.json" | jget 'j.ids.length')
start_server o --parallel 4 --api-key test-key
node "$HERE/openai_test.mjs" "$PORT" test-key "$n_tool"
stop_server "$PID" o
