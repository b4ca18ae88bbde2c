// A 10,000-request vote through the scripted batch server: every request is
// submitted once, runs once and is counted once, across several batches.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { anthropic, openai, vote } from "parallel-task-executor";
import { startBatchServer } from "../support/batch-server.mjs";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { anthropicOk, openaiOk } from "../support/scripted-server.mjs";

const N = 10_000;

let server;
let uninstallGuard;

before(async () => {
  uninstallGuard = installLoopbackGuard();
  server = await startBatchServer({ concurrency: 64, validatingMs: 5, finalizingMs: 5 });
});

after(async () => {
  await server.close();
  uninstallGuard();
});

/** Returns the reply of sample `index`: A for 60% of indexes, B for 30% and C for 10%. */
function answerOf(index) {
  const digit = index % 10;
  if (digit < 6) return "A";
  if (digit < 9) return "B";
  return "C";
}

function answerByCustomId() {
  server.upstream.setDefault((record) => {
    const index = Number(record.headers["x-batch-custom-id"].slice("sample-".length));
    const text = answerOf(index);
    return record.path.endsWith("/messages") ? anthropicOk(text) : openaiOk(text);
  });
}

/** Checks that the report, the batches and the upstream each hold every sample once. */
function assertEachOnce(report) {
  assert.equal(report.samples.length, N);
  assert.deepEqual(
    report.samples.map((s) => s.index),
    Array.from({ length: N }, (_, i) => i),
  );
  assert.ok(report.samples.every((s) => s.status === "ok"));
  assert.ok(report.samples.every((s) => s.text === answerOf(s.index)));
  assert.deepEqual(report.counts, { A: 6000, B: 3000, C: 1000 });
  assert.equal(report.winner, "A");
  assert.deepEqual(report.batch.unmatched, []);

  const submitted = report.batch.batches.flatMap((b) => b.customIds);
  assert.equal(submitted.length, N);
  assert.equal(new Set(submitted).size, N, "no request is in two batches");

  const forwarded = server.upstream.requests().map((r) => r.headers["x-batch-custom-id"]);
  assert.equal(forwarded.length, N);
  assert.equal(new Set(forwarded).size, N, "each request ran once");
  assert.equal(report.usage.inputTokens, 9 * N);
}

test("10,000 OpenAI requests in three batches are each counted once", async () => {
  server.reset();
  server.configure({ concurrency: 64, validatingMs: 5, finalizingMs: 5 });
  answerByCustomId();
  const provider = openai({ baseURL: `${server.url}/v1`, model: "gpt-test" });
  const report = await vote({
    provider,
    prompt: "Pick A, B or C.",
    voters: N,
    extract: "text",
    batch: { pollIntervalMs: 20, maxPollIntervalMs: 200, maxRequestsPerBatch: 4000 },
  });
  assert.deepEqual(
    report.batch.batches.map((b) => b.customIds.length),
    [4000, 4000, 2000],
  );
  assertEachOnce(report);
});

test("10,000 Anthropic requests in one batch are each counted once", async () => {
  server.reset();
  server.configure({ concurrency: 64 });
  answerByCustomId();
  const provider = anthropic({ baseURL: `${server.url}/v1`, model: "claude-test", apiKey: "sk-ant-scale-0001", maxTokens: 8 });
  const report = await vote({
    provider,
    prompt: "Pick A, B or C.",
    voters: N,
    extract: "text",
    batch: { pollIntervalMs: 20, maxPollIntervalMs: 200 },
  });
  assert.equal(report.batch.batches.length, 1);
  assertEachOnce(report);
});
