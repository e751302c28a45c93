// Builds the tokenizer benchmark corpus: a few MB of mixed text as JSON
// lines {"text": ...} of ~16 KB each (both tokenizers see the same chunks).
// English prose (Tiny Shakespeare, TinyStories), C code (this repository),
// CJK (Chinese sentences from the golden encodings, generated Japanese and
// Korean) and emoji-laden chat lines. Deterministic: a fixed-seed PRNG.
// usage: node make_corpus.js CORPORA_DIR REPO_DIR OUT.jsonl
"use strict";
const fs = require("fs");
const path = require("path");

const [corporaDir, repoDir, outPath] = process.argv.slice(2);
let seed = 12345;
function rand() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const bytes = (s) => Buffer.byteLength(s, "utf8");

const parts = [];
for (const f of ["tinyshakespeare.txt", "tinystories-valid-head.txt"])
  parts.push(fs.readFileSync(path.join(corporaDir, f), "utf8"));

// Code: the repository's own C sources, repeated to ~700 KB.
const sources = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && !e.name.startsWith(".") && e.name !== "node_modules" && !e.name.startsWith("build")) walk(p);
    else if (/\.(c|h|sh|txt)$/.test(e.name) && e.name !== "CMakeCache.txt") sources.push(fs.readFileSync(p, "utf8"));
  }
})(path.join(repoDir, "src"));
let code = "";
while (bytes(code) < 700000) code += pick(sources) + "\n";
parts.push(code);

// CJK: Chinese sentences re-sampled, Japanese and Korean generated.
const zhSource = ["tests/data/encoding/test_input_4.json", "tests/data/encoding/test_input_3.json"]
  .map((f) => JSON.stringify(JSON.parse(fs.readFileSync(path.join(repoDir, f), "utf8"))))
  .join("")
  .replace(/\\n/g, "\n");
const zhSentences = zhSource.match(/[^。！？\n"]*[\u4e00-\u9fa5][^。！？\n"]*[。！？]/g);
const hiragana = Array.from({ length: 83 }, (_, i) => String.fromCodePoint(0x3041 + i));
const katakana = Array.from({ length: 86 }, (_, i) => String.fromCodePoint(0x30a1 + i));
const kanji = Array.from("日本語東京大学学生先生時間今日明日電話会社仕事映画音楽料理天気雨雪春夏秋冬");
let cjk = "";
while (bytes(cjk) < 700000) {
  const kind = rand();
  if (kind < 0.5) {
    let p = "";
    for (let i = randInt(2, 6); i > 0; i--) p += pick(zhSentences);
    cjk += p + "\n\n";
  } else if (kind < 0.8) {
    let s = "";
    for (let i = randInt(4, 12); i > 0; i--) {
      const r = rand();
      const src = r < 0.4 ? hiragana : r < 0.7 ? kanji : katakana;
      for (let k = randInt(1, 4); k > 0; k--) s += pick(src);
      if (rand() < 0.15) s += "、";
    }
    cjk += s + "。\n";
  } else {
    const words = [];
    for (let i = randInt(3, 9); i > 0; i--) {
      let w = "";
      for (let k = randInt(1, 4); k > 0; k--) w += String.fromCodePoint(0xac00 + randInt(0, 11171));
      words.push(w);
    }
    cjk += words.join(" ") + ".\n";
  }
}
parts.push(cjk);

// Emoji-laden chat lines: English words, emoji, skin tones, ZWJ, flags.
const words = parts[0].split(/\s+/).filter((w) => w.length > 1);
const emojiRanges = [[0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f680, 0x1f6c5], [0x1f90c, 0x1f9ff], [0x2600, 0x26ff]];
function emoji() {
  const r = rand();
  if (r < 0.1) return "👨‍👩‍👧‍👦";
  if (r < 0.2) return String.fromCodePoint(0x1f1e6 + randInt(0, 25), 0x1f1e6 + randInt(0, 25));
  const [lo, hi] = pick(emojiRanges);
  let e = String.fromCodePoint(randInt(lo, hi));
  if (rand() < 0.1) e += String.fromCodePoint(0x1f3fb + randInt(0, 4));
  return e;
}
let chat = "";
while (bytes(chat) < 350000) {
  let line = "";
  for (let i = randInt(4, 14); i > 0; i--) {
    line += (rand() < 0.3 ? emoji() + (rand() < 0.3 ? emoji() : "") : pick(words)) + " ";
  }
  chat += line.trimEnd() + "\n";
}
parts.push(chat);

// Chunks of ~16 KB at line boundaries.
const out = fs.openSync(outPath, "w");
let total = 0, chunks = 0;
for (const text of parts) {
  const lines = text.split(/(?<=\n)/);
  let chunk = "";
  for (const l of lines) {
    chunk += l;
    if (bytes(chunk) >= 16384) {
      fs.writeSync(out, JSON.stringify({ text: chunk }) + "\n");
      total += bytes(chunk); chunks++; chunk = "";
    }
  }
  if (chunk) { fs.writeSync(out, JSON.stringify({ text: chunk }) + "\n"); total += bytes(chunk); chunks++; }
}
fs.closeSync(out);
console.log(`corpus: ${(total / 1e6).toFixed(2)} MB in ${chunks} chunks -> ${outPath}`);
