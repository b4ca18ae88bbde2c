// Faults against the scripted server, each checked with the shared invariants: an
// abort, a deadline and an early vote decision close every open request within
// 200 ms. Retries wait as long as Retry-After requests, and maxRequests and the
// concurrency hold while every call fails.

import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";

import { openai, section, vote } from "parallel-task-executor";
import { assertInvariants, checkInvariants, installProcessGuard, trackResponses } from "../support/invariants.mjs";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { openaiError, openaiOk, startScriptedServer } from "../support/scripted-server.mjs";

let server;
let provider;
let guard;
let uninstallLoopback;

before(async () => {
  uninstallLoopback = installLoopbackGuard();
  server = await startScriptedServer();
  provider = openai({ baseURL: `${server.url}/v1`, model: "scripted", seed: 1 });
});

after(async () => {
  await server.close();
  uninstallLoopback();
});

beforeEach(async () => {
  await server.waitFor(() => server.stats().inFlight === 0);
  server.reset();
  server.setDefault(null);
  guard = installProcessGuard();
});

afterEach(async () => {
  await guard.assertClean();
  guard.uninstall();
});

function subtasks(count) {
  return Array.from({ length: count }, (_, k) => ({ id: `s${k}`, prompt: `part ${k}` }));
}

async function run(start, options) {
  const outcome = await start(options).then(
    (value) => value,
    (error) => error,
  );
  return { outcome, settledAt: server.now() };
}

test("abort closes every open request", async () => {
  server.setDefault(trackResponses(openaiOk("late", { delayMs: 5_000 })));
  const controller = new AbortController();
  const options = { provider, subtasks: subtasks(12), concurrency: 4, signal: controller.signal };
  setTimeout(() => controller.abort(new Error("stop")), 100);
  const { outcome, settledAt } = await run(section, options);
  assert.equal(outcome.code, "ABORTED");
  assert.equal(server.requests().length, 4);
  await assertInvariants({ outcome, options, server, settledAt });
});

test("deadline closes every open request", async () => {
  server.setDefault(trackResponses({ stall: "before-headers" }));
  const options = { provider, subtasks: subtasks(6), concurrency: 3, deadlineMs: 150 };
  const { outcome, settledAt } = await run(section, options);
  assert.equal(outcome.code, "DEADLINE_EXCEEDED");
  assert.ok(server.requests().length >= 3);
  await assertInvariants({ outcome, options, server, settledAt });
});

test("early vote decision aborts outstanding samples", async () => {
  // Seeds 1..3 get a reply at once, and the other samples would take 5 s.
  server.setDefault(
    trackResponses((record) => (record.body.seed <= 3 ? openaiOk("The answer is 42.") : openaiOk("The answer is 41.", { delayMs: 5_000 }))),
  );
  const options = { provider, prompt: "What is 6 times 7?", voters: 5, extract: "number", rule: { aheadBy: 3 }, maxSamples: 9 };
  const { outcome, settledAt } = await run(vote, options);
  assert.equal(outcome.winner, "42");
  assert.equal(outcome.decided, true);
  const cancelled = outcome.samples.filter((sample) => sample.status === "cancelled");
  assert.equal(cancelled.length, 2);
  await assertInvariants({ outcome, options, server, settledAt });
  assert.equal(server.requests().filter((record) => record.outcome === "client-closed").length, 2);
});

test("retries wait for Retry-After", async () => {
  server.setDefault(
    trackResponses((record, ctx) =>
      ctx.index < 4
        ? openaiError(429, "Rate limit reached.", { type: "rate_limit_error", headers: ctx.index % 2 ? { "retry-after-ms": "150" } : { "retry-after": "1" } })
        : openaiOk("fine"),
    ),
  );
  const options = { provider, subtasks: subtasks(4), concurrency: 4, retry: { baseDelayMs: 1, maxDelayMs: 5 } };
  const { outcome, settledAt } = await run(section, options);
  assert.deepEqual(outcome.results.map((result) => result.status), ["ok", "ok", "ok", "ok"]);
  assert.equal(server.requests().length, 8);
  await assertInvariants({ outcome, options, server, settledAt });
});

test("maxRequests and concurrency hold while every call fails", async () => {
  server.setDefault(trackResponses(openaiError(500, "The server had an error.", { type: "server_error" })));
  const options = { provider, subtasks: subtasks(10), concurrency: 2, maxRequests: 5, retry: { baseDelayMs: 1, maxDelayMs: 5 } };
  const { outcome, settledAt } = await run(section, options);
  const report = outcome instanceof Error ? outcome.report : outcome;
  assert.ok(report.results.every((result) => result.status !== "ok"));
  assert.equal(server.requests().length, 5);
  await assertInvariants({ outcome, options, server, settledAt });
});

test("invariants report a retry that came too early", async () => {
  // The checker itself must be able to fail: a tracked 429 that requested 10 s, then
  // an immediate retry of the same body sent by hand.
  server.setDefault(trackResponses((record, ctx) => (ctx.index === 0 ? openaiError(429, "slow down", { headers: { "retry-after": "10" } }) : openaiOk("ok"))));
  const body = JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "same" }] });
  for (let i = 0; i < 2; i += 1) {
    const response = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    await response.arrayBuffer();
  }
  const problems = await checkInvariants({ outcome: {}, options: { maxRequests: 1, concurrency: 1 }, server, settledAt: server.now() });
  assert.equal(problems.length, 2, problems.join("\n"));
  assert.match(problems[0], /more than maxRequests 1/);
  assert.match(problems[1], /retried .* ms after request 1, which requested 10000 ms/);
});
