// serve_openai: drive `v4c serve` with the official `openai` npm client:
// a chat completion, a streamed one (same greedy text), a tool-call round
// trip (tools + an assistant tool_calls message + a tool result reach the
// prompt: its token count equals `v4c chat-template` of the same request),
// thinking via reasoning_effort, /v1/completions, /v1/models, and errors
// surfacing as the client's typed exceptions.
// usage: node openai_test.mjs PORT API_KEY TOOL_PROMPT_TOKENS
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [port, apiKey, toolPromptTokens] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey, maxRetries: 0, timeout: 60000 });
const model = 'model';
const N = 8;

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), [model]);

// a chat completion
const messages = [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'Say hello.' }];
const r = await client.chat.completions.create({ model, messages, max_tokens: N, temperature: 0 });
assert.equal(r.object, 'chat.completion');
assert.equal(r.choices.length, 1);
assert.equal(r.choices[0].message.role, 'assistant');
assert.equal(typeof r.choices[0].message.content, 'string');
assert.ok(r.choices[0].message.content.length > 0);
assert.equal(r.choices[0].finish_reason, 'length');
assert.equal(r.usage.completion_tokens, N);
assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + N);
console.log('ok: chat completion:', JSON.stringify(r.choices[0].message.content));

// the same request streamed: same greedy text, usage in the last chunk
const stream = await client.chat.completions.create({ model, messages, max_tokens: N, temperature: 0, stream: true, stream_options: { include_usage: true } });
let text = '', role = null, finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  assert.equal(chunk.object, 'chat.completion.chunk');
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta.role) role = c.delta.role;
  if (c.delta.content) text += c.delta.content;
  if (c.finish_reason) finish = c.finish_reason;
}
assert.equal(role, 'assistant');
assert.equal(text, r.choices[0].message.content);
assert.equal(finish, 'length');
assert.equal(usage.completion_tokens, N);
assert.ok(chunks >= 3);
console.log(`ok: streamed chat completion (${chunks} chunks)`);

// tool-call round trip: the client sends tools, the assistant's tool call
// and the tool's result; all of it must reach the prompt
const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Get the weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const round = [
  { role: 'user', content: 'What is the weather in Paris?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21, "sky": "clear"}' },
];
const t = await client.chat.completions.create({ model, messages: round, tools, tool_choice: 'auto', max_tokens: 4, temperature: 0 });
assert.equal(t.usage.prompt_tokens, Number(toolPromptTokens), 'the prompt holds the tools, the call and its result');
assert.equal(t.choices[0].message.role, 'assistant');
assert.ok(['length', 'stop', 'tool_calls'].includes(t.choices[0].finish_reason));
// streamed with tools: a well-formed stream (tool_calls deltas, if any, carry index/id/name)
const ts = await client.chat.completions.create({ model, messages: round, tools, max_tokens: 4, temperature: 0, stream: true });
let tfinish = null;
for await (const chunk of ts) {
  const c = chunk.choices[0];
  for (const tc of c?.delta?.tool_calls ?? []) assert.ok(Number.isInteger(tc.index) && tc.id && tc.function.name);
  if (c?.finish_reason) tfinish = c.finish_reason;
}
assert.ok(tfinish);
// tool_choice none: the tools stay out of the prompt
const tn = await client.chat.completions.create({ model, messages: [round[0]], tools, tool_choice: 'none', max_tokens: 1 });
const plain = await client.chat.completions.create({ model, messages: [round[0]], max_tokens: 1 });
assert.equal(tn.usage.prompt_tokens, plain.usage.prompt_tokens);
console.log(`ok: tool round trip (${t.usage.prompt_tokens} prompt tokens)`);

// thinking: reasoning_effort turns it on; the random model never closes
// </think>, so everything it says is reasoning
const th = await client.chat.completions.create({ model, messages, max_tokens: N, temperature: 0, reasoning_effort: 'high' });
assert.equal(typeof th.choices[0].message.reasoning_content, 'string');
assert.ok(th.choices[0].message.reasoning_content.length > 0);
console.log('ok: reasoning_content');

// /v1/completions
const c = await client.completions.create({ model, prompt: 'Hello world', max_tokens: N, temperature: 0, seed: 1 });
assert.equal(c.object, 'text_completion');
assert.equal(c.usage.completion_tokens, N);
assert.equal(typeof c.choices[0].text, 'string');
let ctext = '';
for await (const chunk of await client.completions.create({ model, prompt: 'Hello world', max_tokens: N, temperature: 0, stream: true })) ctext += chunk.choices[0]?.text ?? '';
assert.equal(ctext, c.choices[0].text);
console.log('ok: completions');

// errors are typed exceptions carrying the error object
await assert.rejects(client.chat.completions.create({ model: 'nope', messages }), (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
await assert.rejects(client.chat.completions.create({ model, messages, temperature: 'hot' }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 1e8 }), (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
const bad = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'wrong', maxRetries: 0 });
await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
console.log('ok: errors');
console.log('serve_openai: OK');
