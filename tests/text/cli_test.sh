#!/bin/sh
# CLI tests of the text subcommands: tokenize (golden ids, decode round trip,
# a bad line), chat-template (golden prompts byte for byte, special-token
# warning), parse-completion (message JSON, malformed markup).
# usage: cli_test.sh V4C_BINARY DATA_DIR
set -u
V4C=$1
DATA=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok   $*"; }

V3=$DATA/tokenizer/deepseek-v3-tokenizer.json
V4=$DATA/tokenizer/deepseek-v4-tokenizer.json

# tokenize: each golden line's text → exactly its ids.
for pair in "$V3:cases.jsonl" "$V4:v4-cases.jsonl"; do
    tok=${pair%%:*}
    cases=$DATA/tokenizer/${pair#*:}
    sed -E 's/.*"ids":\[([^]]*)\]\}$/{"ids": [\1]}/; s/,/, /g' "$cases" > "$TMP/want_ids"
    if "$V4C" tokenize -t "$tok" < "$cases" > "$TMP/got_ids" && cmp -s "$TMP/got_ids" "$TMP/want_ids"; then
        ok "tokenize ${pair#*:}"
    else
        fail "tokenize ${pair#*:}"
    fi
    # --decode: the ids give back the text (same JSON escaping as the file).
    sed -E 's/^\{"text":(.*),"ids":\[[^]]*\]\}$/{"text": \1}/' "$cases" > "$TMP/want_text"
    if "$V4C" tokenize -t "$tok" --decode < "$TMP/want_ids" > "$TMP/got_text" && cmp -s "$TMP/got_text" "$TMP/want_text"; then
        ok "tokenize --decode ${pair#*:}"
    else
        fail "tokenize --decode ${pair#*:}"
    fi
done

# A line with invalid UTF-8 is an error for that line only.
printf '{"text": "a"}\n{"text": "\377"}\n{"text": "b"}\n' > "$TMP/bad"
"$V4C" tokenize -t "$V4" < "$TMP/bad" > "$TMP/out" 2> "$TMP/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "line 2" "$TMP/err" && [ "$(wc -l < "$TMP/out")" -eq 2 ]; then
    ok "tokenize reports the bad line and goes on"
else
    fail "tokenize bad line (rc=$rc): $(cat "$TMP/err")"
fi
echo '{"ids": [999999]}' | "$V4C" tokenize -t "$V4" --decode > /dev/null 2> "$TMP/err" && fail "unknown id accepted" || ok "tokenize --decode rejects an unknown id"

# chat-template: the golden prompts byte for byte (1-3 thinking, 4 chat).
for n in 1 2 3 4; do
    mode=thinking
    [ $n -eq 4 ] && mode=chat
    if "$V4C" chat-template --thinking-mode $mode < "$DATA/encoding/test_input_$n.json" > "$TMP/prompt" &&
        cmp -s "$TMP/prompt" "$DATA/encoding/test_output_$n.txt"; then
        ok "chat-template case $n"
    else
        fail "chat-template case $n"
    fi
done
echo '[{"role": "user"' | "$V4C" chat-template --thinking-mode chat > /dev/null 2> "$TMP/err" && fail "bad JSON accepted" || ok "chat-template rejects bad JSON: $(cat "$TMP/err")"

# Special tokens: single ids with V4; V3 lacks <think> → one warning.
"$V4C" chat-template --thinking-mode thinking -t "$V4" --ids < "$DATA/encoding/test_input_2.json" > "$TMP/ids" 2> "$TMP/err"
if grep -q "128821" "$TMP/ids" && [ ! -s "$TMP/err" ]; then ok "chat ids with V4 specials"; else fail "chat ids V4"; fi
"$V4C" chat-template --thinking-mode thinking -t "$V3" --ids < "$DATA/encoding/test_input_1.json" > "$TMP/ids" 2> "$TMP/err"
if [ $? -eq 0 ] && [ "$(grep -c warning "$TMP/err")" -eq 1 ] && grep -q "<think>" "$TMP/err"; then
    ok "V3 tokenizer: encodes with one warning"
else
    fail "V3 warning: $(cat "$TMP/err")"
fi

# parse-completion.
printf 'Let me check.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="location" string="true">Paris</｜DSML｜parameter>\n<｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>' |
    "$V4C" parse-completion --thinking-mode thinking > "$TMP/msg"
want='{"role": "assistant", "content": "", "reasoning_content": "Let me check.", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\", \"days\": 3}"}}]}'
if [ "$(cat "$TMP/msg")" = "$want" ]; then ok "parse-completion tool call"; else fail "parse-completion: $(cat "$TMP/msg")"; fi
printf 'x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>' |
    "$V4C" parse-completion --thinking-mode chat > /dev/null 2> "$TMP/err"
if [ $? -ne 0 ] && grep -q "at byte" "$TMP/err"; then ok "parse-completion malformed: $(cat "$TMP/err")"; else fail "malformed accepted"; fi

exit $FAILED
