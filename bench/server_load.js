// server_load.js PORT CLIENTS SECONDS MAX_TOKENS [TEMPERATURE]: CLIENTS concurrent
// streaming clients, each sending /v1/completions requests (stream: true,
// include_usage) back to back until SECONDS have passed (the last request
// of each client runs to its end). Loopback only. Prints one JSON line:
// requests, errors, generated tokens, wall time, aggregate tokens/s, mean
// time to first token.
const http = require('http');
const [port, clients, seconds, maxTokens, temp = 0.8] = process.argv.slice(2).map(Number);
const deadline = Date.now() + seconds * 1000;
let requests = 0, errors = 0, tokens = 0, ttftSum = 0, ttftN = 0;

function one(client, i) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ prompt: `Client ${client} request ${i}: tell me a long story about the sea.`, max_tokens: maxTokens,
      temperature: temp, seed: client * 1000 + i, stream: true, stream_options: { include_usage: true } });
    const t0 = Date.now();
    let first = true, buf = '', usage = null, done = false;
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/completions', method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) { errors++; res.resume(); return resolve(); }
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (first) { first = false; ttftSum += Date.now() - t0; ttftN++; }
        buf += d;
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, k); buf = buf.slice(k + 2);
          if (!ev.startsWith('data: ')) continue;
          const data = ev.slice(6);
          if (data === '[DONE]') { done = true; continue; }
          const j = JSON.parse(data);
          if (j.error) errors++;
          if (j.usage) usage = j.usage;
        }
      });
      res.on('end', () => {
        // complete: [DONE] and usage (fewer tokens than asked only when the model emits EOS)
        if (!done || !usage || usage.completion_tokens < 1 || usage.completion_tokens > maxTokens) errors++;
        else { requests++; tokens += usage.completion_tokens; }
        resolve();
      });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end(body);
  });
}

async function client(c) {
  for (let i = 0; Date.now() < deadline; i++) await one(c, i);
}

const t0 = Date.now();
Promise.all(Array.from({ length: clients }, (_, c) => client(c))).then(() => {
  const wall = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ clients, seconds: wall, requests, errors, tokens, tokens_per_s: +(tokens / wall).toFixed(1),
    mean_ttft_ms: ttftN ? Math.round(ttftSum / ttftN) : null }));
});
