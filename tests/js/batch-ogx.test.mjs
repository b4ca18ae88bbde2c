// The batch mode against ogx 1.5.0, a real server that implements both batch APIs,
// with its inference pointed at the scripted server on 127.0.0.1. ogx is a peer
// for the lifecycle (submit, poll, cancel, per-line failure, custom_id matching),
// not a conformance oracle. The comments below name each place where its output
// differs from the providers' documented formats, and src/batch/tests.rs checks
// those formats against recorded files.
//
// ogx needs Python 3.12 or later. scripts/ogx/install.sh installs it into
// target/ogx/venv when one can be found. When none can, every test here is skipped
// with that reason.

import assert from "node:assert/strict";
import { after, beforeEach, test } from "node:test";

import { anthropic, openai, resumeBatch, section, vote } from "parallel-task-executor";
import { OGX_MODEL, startOgx } from "../../scripts/ogx/index.mjs";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { openaiError, openaiOk, startScriptedServer } from "../support/scripted-server.mjs";

const FAST = { pollIntervalMs: 50, maxPollIntervalMs: 200 };

const uninstallGuard = installLoopbackGuard();
const upstream = await startScriptedServer();
let ogx = null;
let skip = false;
try {
  ogx = await startOgx({ upstream: upstream.url, concurrency: 2 });
} catch (error) {
  if (error.code !== "OGX_UNAVAILABLE") throw error;
  skip = `ogx cannot run here: ${error.message}`;
}

after(async () => {
  await ogx?.stop();
  await upstream.close();
  uninstallGuard();
});

beforeEach(async () => {
  await upstream.waitFor(() => upstream.stats().inFlight === 0, { timeoutMs: 10_000 });
  upstream.reset();
  // ogx calls the upstream's OpenAI API for both batch APIs (its remote::openai
  // provider translates Anthropic requests). Prompts containing "reject" get 400.
  upstream.setDefault((record) => {
    const prompt = record.body.messages.at(-1).content;
    if (prompt.includes("reject")) return openaiError(400, "the upstream rejected this prompt");
    return openaiOk(prompt.includes("seven") ? "42" : `out:${prompt}`);
  });
});

/** Returns a fetch that records each call to ogx, and the list it records into. */
function recorder() {
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push({ url, method: init.method });
    return fetch(url, init);
  };
  return { calls, fetchFn };
}

test("openai vote through ogx keeps a failed line apart", { skip }, async () => {
  const provider = openai({ baseURL: ogx.baseURL, model: OGX_MODEL });
  const report = await vote({
    provider,
    voters: [{ prompt: "six times seven" }, { prompt: "seven times six" }, { prompt: "reject this" }],
    extract: "number",
    batch: FAST,
  });
  assert.equal(report.winner, "42");
  assert.deepEqual(
    report.samples.map((s) => s.status),
    ["ok", "ok", "failed"],
  );
  // ogx writes a failed line as { custom_id, error: { type: "request_failed",
  // message } }. OpenAI puts the upstream response in `response` with its
  // status_code, so here the status is only in the message.
  assert.equal(report.samples[2].error.providerType, "request_failed");
  assert.match(report.samples[2].error.message, /Error code: 400/);
  assert.equal(report.batch.batches[0].status, "completed");
  assert.deepEqual(report.batch.unmatched, []);
  // ogx sends response.body as a JSON string, which the reader parses.
  assert.equal(report.samples[0].text, "42");
  assert.deepEqual(report.usage, { inputTokens: 18, outputTokens: 2, costUsd: null });
});

test("anthropic section through ogx runs its phases in order", { skip }, async () => {
  const { calls, fetchFn } = recorder();
  const provider = anthropic({ baseURL: ogx.baseURL, model: OGX_MODEL, apiKey: "sk-ant-local-0001", maxTokens: 16, fetch: fetchFn });
  const report = await section({
    provider,
    subtasks: [
      { id: "a", prompt: "part A" },
      { id: "b", prompt: "part B after {{a}}" },
      { id: "c", prompt: "reject part C", required: false },
    ],
    merge: "keyed",
    batch: FAST,
  });
  assert.deepEqual(report.output, { a: "out:part A", b: "out:part B after out:part A" });
  assert.deepEqual(
    report.results.map((r) => r.status),
    ["ok", "ok", "failed"],
  );
  // An upstream 400 becomes an `errored` result of type api_error with the error
  // object flat; Anthropic would report invalid_request_error inside an error response.
  assert.equal(report.results[2].error.providerType, "api_error");
  const creates = calls.filter((c) => c.method === "POST" && c.url.endsWith("/messages/batches"));
  assert.equal(creates.length, 2, "one batch per phase");
  assert.deepEqual(report.batch.batches.map((b) => b.phase), [0, 1]);
  // ogx gives results_url as a path; the library builds the results URL from the
  // base URL in any case.
  assert.ok(calls.some((c) => c.url === `${ogx.baseURL}/messages/batches/${report.batch.batches[0].id}/results`));
});

test("unknown model fails the ogx batch validation on every line", { skip }, async () => {
  const provider = openai({ baseURL: ogx.baseURL, model: "stub/no-such-model" });
  const error = await vote({ provider, prompt: "six times seven", voters: 2, extract: "number", batch: FAST }).then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.equal(error.code, "ALL_FAILED");
  assert.equal(error.report.batch.batches[0].status, "failed");
  for (const sample of error.report.samples) {
    assert.equal(sample.status, "failed");
    assert.equal(sample.error.providerType, "model_not_found");
    assert.match(sample.error.message, /because of this request: line \d: model_not_found/);
  }
  assert.equal(upstream.requests().length, 0, "no line ran");
});

test("abort cancels the batch at ogx", { skip }, async () => {
  upstream.setDefault(() => ({ ...openaiOk("42"), delayMs: 300 }));
  const { calls, fetchFn } = recorder();
  const controller = new AbortController();
  const provider = openai({ baseURL: ogx.baseURL, model: OGX_MODEL, fetch: fetchFn });
  const run = vote({ provider, prompt: "six times seven", voters: 6, extract: "number", batch: FAST, signal: controller.signal });
  await upstream.waitFor(() => upstream.requests().some((r) => r.outcome === "completed"), { timeoutMs: 10_000 });
  controller.abort();
  const error = await run.then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.equal(error.code, "ABORTED");
  assert.equal(calls.filter((c) => c.method === "POST" && c.url.endsWith("/cancel")).length, 1);
  assert.equal(error.report.batch.batches[0].status, "cancelled");
  assert.equal(error.report.samples.length, 6);
  // ogx writes no output file for a cancelled batch, so even the lines that had
  // finished come back cancelled; OpenAI keeps them in the output file.
  assert.ok(error.report.samples.every((s) => s.status === "ok" || s.status === "cancelled"));
});

test("abort keeps the finished results of an ogx message batch", { skip }, async () => {
  upstream.setDefault(() => ({ ...openaiOk("42"), delayMs: 300 }));
  const controller = new AbortController();
  const provider = anthropic({ baseURL: ogx.baseURL, model: OGX_MODEL, apiKey: "sk-ant-local-0001", maxTokens: 16 });
  const run = vote({ provider, prompt: "six times seven", voters: 6, extract: "number", batch: FAST, signal: controller.signal });
  await upstream.waitFor(() => upstream.requests().filter((r) => r.outcome === "completed").length >= 2, { timeoutMs: 10_000 });
  controller.abort();
  const error = await run.then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.equal(error.code, "ABORTED");
  const statuses = error.report.samples.map((s) => s.status);
  assert.ok(statuses.filter((s) => s === "ok").length >= 2, statuses.join());
  assert.ok(statuses.includes("cancelled"), statuses.join());
  assert.equal(error.report.batch.batches[0].status, "ended");
});

test("resumeBatch collects an ogx batch after the first call gave up", { skip }, async () => {
  upstream.setDefault(() => ({ ...openaiOk("42"), delayMs: 150 }));
  const provider = openai({ baseURL: ogx.baseURL, model: OGX_MODEL });
  const options = { provider, prompt: "six times seven", voters: 4, extract: "number", batch: FAST };
  const error = await vote({ ...options, deadlineMs: 100 }).then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.equal(error.code, "DEADLINE_EXCEEDED");
  const report = await resumeBatch(error.report.batch, options);
  assert.equal(report.winner, "42");
  assert.equal(report.valid, 4);
  assert.equal(upstream.requests().length, 4, "each line ran once");
});
