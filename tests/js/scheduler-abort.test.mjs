// Cancellation by the caller's AbortSignal against the scripted server. The cases
// are a signal aborted before the call, an abort while a stream is kept open, and an
// abort in the middle of a run with requests in flight, in retry sleeps and queued.
// Then one signal shared by 50 runs, AbortSignal.timeout, and the run deadline.
// Every test also checks that nothing rejects unhandled.

import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { after, afterEach, before, beforeEach, test } from "node:test";

import { openai, section } from "parallel-task-executor";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { openaiOk, openaiStream, startScriptedServer } from "../support/scripted-server.mjs";

// Cancellation is asserted with generous upper bounds: the machine may be busy.
const CLOSE_WITHIN_MS = 200;

const unhandled = [];
const warnings = [];
const onUnhandled = (reason) => unhandled.push(reason);
const onWarning = (warning) => warnings.push(warning);

let server;
let provider;
let streaming;
let uninstallGuard;

before(async () => {
  process.on("unhandledRejection", onUnhandled);
  process.on("warning", onWarning);
  uninstallGuard = installLoopbackGuard();
  server = await startScriptedServer();
  provider = openai({ baseURL: `${server.url}/v1`, model: "scripted" });
  streaming = openai({ baseURL: `${server.url}/v1`, model: "scripted", stream: true });
});

after(async () => {
  await server.close();
  uninstallGuard();
  process.off("unhandledRejection", onUnhandled);
  process.off("warning", onWarning);
});

beforeEach(async () => {
  await server.waitFor(() => server.stats().inFlight === 0);
  await new Promise((resolve) => setTimeout(resolve, 50));
  server.reset();
  server.setDefault(null);
});

afterEach(async () => {
  // Give stray rejections a chance to surface before checking.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(unhandled, [], "a promise rejected unhandled");
  assert.deepEqual(
    warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message),
    [],
  );
});

function promptOf(record) {
  return record.body.messages.at(-1).content;
}

function tasks(count) {
  return Array.from({ length: count }, (_, k) => ({ id: `s${k}`, prompt: `section ${k}` }));
}

async function rejection(promise) {
  return promise.then(
    () => assert.fail("the run should reject"),
    (error) => error,
  );
}

/** Counts the listeners a signal gets and loses through its own methods. */
function countListeners(signal) {
  const counts = { adds: 0, removes: 0 };
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args) => {
    counts.adds += 1;
    return add(...args);
  };
  signal.removeEventListener = (...args) => {
    counts.removes += 1;
    return remove(...args);
  };
  return counts;
}

/** Checks that every subtask appears once, each with a status from the report's set. */
function assertAllReported(report, count) {
  assert.deepEqual(
    report.results.map((r) => r.id),
    Array.from({ length: count }, (_, k) => `s${k}`),
  );
  for (const result of report.results) {
    assert.ok(["ok", "failed", "cancelled", "skipped"].includes(result.status), result.status);
  }
}

test("pre-aborted signal rejects without a request", async () => {
  const controller = new AbortController();
  const reason = new Error("user left the page");
  controller.abort(reason);
  const counts = countListeners(controller.signal);
  const started = performance.now();
  const error = await rejection(section({ provider, subtasks: tasks(3), signal: controller.signal }));

  assert.ok(performance.now() - started < CLOSE_WITHIN_MS);
  assert.equal(error.name, "AbortError");
  assert.equal(error.code, "ABORTED");
  assert.equal(error.cause, reason);
  assert.equal(error.timeout, false);
  assertAllReported(error.report, 3);
  assert.ok(error.report.results.every((r) => r.status === "cancelled" && r.attempts.length === 0));
  assert.equal(server.stats().count, 0);
  assert.deepEqual(counts, { adds: 0, removes: 0 });
});

test("abort mid-stream closes the held-open stream", async () => {
  const stream = openaiStream("Hello there");
  // One delta, then the server keeps the connection open and sends nothing.
  server.setDefault({ ...stream, chunks: stream.chunks.slice(0, 2), then: "stall" });
  const controller = new AbortController();
  const run = section({ provider: streaming, subtasks: tasks(2), signal: controller.signal });
  await server.waitFor(() => server.requests().length === 2 && server.requests().every((r) => r.respondedAt !== null));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const abortedAt = server.now();
  const startedAbort = performance.now();
  controller.abort();
  const error = await rejection(run);

  assert.ok(performance.now() - startedAbort < CLOSE_WITHIN_MS, "the rejection came late");
  assert.equal(error.name, "AbortError");
  assert.equal(error.cause, controller.signal.reason);
  assertAllReported(error.report, 2);
  assert.ok(error.report.results.every((r) => r.status === "cancelled"));
  await server.waitFor(() => server.stats().inFlight === 0);
  for (const record of server.requests()) {
    assert.equal(record.outcome, "client-closed");
    assert.ok(record.clientClosedAt - abortedAt < CLOSE_WITHIN_MS, `closed ${record.clientClosedAt - abortedAt} ms after the abort`);
  }
});

test("abort mid-run stops requests, sleeps and queued work", async () => {
  // s0 gets a 503 asking for a 5 s wait and sleeps before its retry; s1–s3 hang;
  // s4–s7 queue behind them.
  server.setDefault((record) =>
    promptOf(record) === "section 0"
      ? { status: 503, headers: { "retry-after": "5" }, body: "busy" }
      : openaiOk("late", { delayMs: 10_000 }),
  );
  const controller = new AbortController();
  const run = section({ provider, subtasks: tasks(8), concurrency: 4, signal: controller.signal });
  await server.waitFor(() => server.stats().inFlight === 3 && server.requests().length === 4);
  const abortedAt = server.now();
  controller.abort(new Error("stop now"));
  const error = await rejection(run);

  assert.equal(error.code, "ABORTED");
  assert.equal(error.cause.message, "stop now");
  assertAllReported(error.report, 8);
  assert.ok(error.report.results.every((r) => r.status === "cancelled"));
  assert.deepEqual(
    error.report.results.map((r) => r.attempts.length),
    [1, 1, 1, 1, 0, 0, 0, 0],
  );
  assert.equal(error.report.results[0].attempts[0].status, "failed");
  assert.equal(error.report.results[1].attempts[0].status, "cancelled");
  await server.waitFor(() => server.stats().inFlight === 0);
  for (const record of server.requests().filter((r) => r.outcome !== "completed")) {
    assert.equal(record.outcome, "client-closed");
    assert.ok(record.clientClosedAt - abortedAt < CLOSE_WITHIN_MS, `closed ${record.clientClosedAt - abortedAt} ms after the abort`);
  }
  // Nothing queued or sleeping was sent afterwards.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(server.stats().count, 4);
  assert.ok(server.stats().maxInFlight <= 4);
});

test("one signal shared by 50 runs leaves no listener behind", async () => {
  server.setDefault(openaiOk("x"));
  const controller = new AbortController();
  const counts = countListeners(controller.signal);
  for (let run = 0; run < 50; run += 1) {
    const report = await section({ provider, subtasks: tasks(5), signal: controller.signal });
    assert.equal(report.results.filter((r) => r.status === "ok").length, 5);
    assert.equal(counts.adds, run + 1, "one listener per run");
    assert.equal(counts.removes, counts.adds, "the listener is removed when the run ends");
    assert.equal(getEventListeners(controller.signal, "abort").length, 0);
  }
  assert.equal(server.stats().count, 250);

  // Runs at once share one listener on the caller's signal, so more than Node's
  // limit of 10 raise no MaxListenersExceededWarning; the last run removes it.
  server.setDefault(openaiOk("x", { delayMs: 300 }));
  const runs = Array.from({ length: 12 }, () => section({ provider, subtasks: tasks(2), signal: controller.signal }));
  await server.waitFor(() => server.stats().count === 250 + 24);
  assert.equal(getEventListeners(controller.signal, "abort").length, 1);
  await Promise.all(runs);
  assert.equal(getEventListeners(controller.signal, "abort").length, 0);
  assert.equal(counts.adds, counts.removes);
  assert.deepEqual(warnings.filter((w) => w.name === "MaxListenersExceededWarning"), []);
});

test("AbortSignal.timeout keeps its TimeoutError", async () => {
  server.setDefault(openaiOk("slow", { delayMs: 5000 }));
  const started = performance.now();
  const error = await rejection(section({ provider, subtasks: tasks(2), signal: AbortSignal.timeout(300) }));
  const elapsed = performance.now() - started;

  assert.ok(elapsed >= 290, `rejected after ${elapsed} ms`);
  assert.ok(elapsed < 300 + 1000, `rejected after ${elapsed} ms`);
  assert.equal(error.name, "AbortError");
  assert.equal(error.code, "ABORTED");
  assert.equal(error.cause.name, "TimeoutError");
  assert.equal(error.timeout, true);
  assertAllReported(error.report, 2);

  // A user abort of the same run is distinguished by its cause.
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const userError = await rejection(section({ provider, subtasks: tasks(1), signal: controller.signal }));
  assert.equal(userError.cause.name, "AbortError");
  assert.equal(userError.timeout, false);
});

test("deadline rejects and closes what is open", async () => {
  server.setDefault((record) =>
    promptOf(record) === "section 0" ? openaiOk("quick") : openaiOk("slow", { delayMs: 5000 }),
  );
  const started = performance.now();
  const error = await rejection(section({ provider, subtasks: tasks(3), deadlineMs: 400 }));
  const elapsed = performance.now() - started;
  assert.equal(error.code, "DEADLINE_EXCEEDED");
  assert.match(error.message, /deadlineMs \(400 ms\)/);
  assert.ok(elapsed >= 390, `rejected after ${elapsed} ms`);
  assert.ok(elapsed < 1400, `rejected after ${elapsed} ms`);
  assertAllReported(error.report, 3);
  assert.deepEqual(
    error.report.results.map((r) => r.status),
    ["ok", "cancelled", "cancelled"],
  );
  assert.equal(error.report.results[0].text, "quick");
  await server.waitFor(() => server.stats().inFlight === 0);
  assert.equal(server.requests().filter((r) => r.outcome === "client-closed").length, 2);
});
