// Failure policies of sectioning against the scripted server. One failing section
// (an HTML 502 page, a transient 502, a JSON 400) never throws the finished sections
// away, and fail-fast and an unreachable quorum reject with the partial report.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { section } from "parallel-task-executor";
import { html502, openaiError, openaiOk } from "../support/scripted-server.mjs";
import { promptOf, provider, server, useScriptedProvider } from "../support/scripted-provider.mjs";

const STATUSES = new Set(["ok", "failed", "cancelled", "skipped"]);

useScriptedProvider();

/** Five sections s0–s4 whose prompts are "section k". */
const subtasks = Array.from({ length: 5 }, (_, k) => ({ id: `s${k}`, prompt: `section ${k}` }));
const ids = subtasks.map((s) => s.id);

/** Makes every section but s2 respond `part-k` after delayMs. */
function partsExceptS2(delayMs = 50) {
  server.setDefault((record) => openaiOk(`part-${promptOf(record).split(" ")[1]}`, { delayMs }));
}

/** Checks that every subtask appears once with a status and the server saw no more than allowed. */
function assertInvariants(report, { maxRequests, concurrency } = {}) {
  assert.deepEqual(
    report.results.map((r) => r.id),
    ids,
  );
  for (const result of report.results) {
    assert.ok(STATUSES.has(result.status), `${result.id}: ${result.status}`);
    assert.ok(Array.isArray(result.attempts));
  }
  const stats = server.stats();
  if (maxRequests !== undefined) assert.ok(stats.count <= maxRequests, `${stats.count} requests`);
  if (concurrency !== undefined) assert.ok(stats.maxInFlight <= concurrency, `${stats.maxInFlight} in flight`);
}

async function rejection(promise) {
  return promise.then(
    () => assert.fail("the run should reject"),
    (error) => error,
  );
}

test("HTML 502 in one section keeps the other four", async () => {
  server.script([{ match: { contains: "section 2" }, respond: html502() }]);
  partsExceptS2();
  const report = await section({ provider, subtasks, maxRetries: 2, retry: { baseDelayMs: 20 } });

  assertInvariants(report, { maxRequests: 7 });
  assert.equal(report.output, "part-0\n\npart-1\n\npart-3\n\npart-4");
  assert.deepEqual(
    report.results.map((r) => r.status),
    ["ok", "ok", "failed", "ok", "ok"],
  );
  const failed = report.results[2];
  assert.equal(failed.attempts.length, 3);
  assert.ok(failed.attempts.every((a) => a.status === "failed" && a.error.status === 502));
  assert.equal(failed.error.code, "PROVIDER_ERROR");
  assert.equal(failed.error.status, 502);
  assert.equal(failed.error.retryable, true);
  assert.equal(failed.error.attempts, 3);
  assert.equal(failed.error.providerMessage, "502 Bad Gateway");
  assert.ok(failed.error.bodyExcerpt.length <= 201, failed.error.bodyExcerpt);
  assert.doesNotMatch(failed.error.message, /SyntaxError|Unexpected token/);
  assert.ok(!failed.error.message.includes("<html>"), "the message is not the whole page");
  assert.equal(server.requests().filter((r) => promptOf(r) === "section 2").length, 3);
});

test("transient 502 succeeds after one retry", async () => {
  server.script([{ match: { contains: "section 2" }, times: 1, respond: html502() }]);
  partsExceptS2();
  const report = await section({ provider, subtasks, maxRetries: 2, retry: { baseDelayMs: 20 } });
  assertInvariants(report, { maxRequests: 6 });
  assert.equal(report.output, "part-0\n\npart-1\n\npart-2\n\npart-3\n\npart-4");
  assert.deepEqual(
    report.results.map((r) => r.attempts.length),
    [1, 1, 2, 1, 1],
  );
  assert.equal(server.stats().count, 6);
});

test("JSON 400 is not retried and keeps its message", async () => {
  server.script([{ match: { contains: "section 2" }, respond: openaiError(400, "bad param") }]);
  partsExceptS2();
  const report = await section({ provider, subtasks, maxRetries: 2, retry: { baseDelayMs: 20 } });
  assertInvariants(report, { maxRequests: 5 });
  const failed = report.results[2];
  assert.equal(failed.status, "failed");
  assert.equal(failed.attempts.length, 1);
  assert.equal(failed.error.status, 400);
  assert.equal(failed.error.retryable, false);
  assert.equal(failed.error.providerMessage, "bad param");
  assert.equal(failed.error.providerType, "invalid_request_error");
  assert.equal(server.stats().count, 5);
});

test("fail-fast rejects with every section in the report", async () => {
  server.script([{ match: { contains: "section 2" }, respond: { ...html502(), delayMs: 20 } }]);
  // The others are still in flight when s2 fails for good.
  partsExceptS2(2000);
  const started = performance.now();
  const error = await rejection(section({ provider, subtasks, failure: "fail-fast", maxRetries: 0 }));
  const abortedAt = server.now();

  assert.equal(error.code, "PROVIDER_ERROR");
  assert.equal(error.status, 502);
  assert.equal(error.subtask, "s2");
  assert.ok(performance.now() - started < 1500, "the run did not wait for the other sections");
  const { report } = error;
  assertInvariants(report, { maxRequests: 5 });
  assert.deepEqual(
    report.results.map((r) => r.status),
    ["cancelled", "cancelled", "failed", "cancelled", "cancelled"],
  );
  for (const result of report.results.filter((r) => r.status === "cancelled")) {
    assert.deepEqual(
      result.attempts.map((a) => a.status),
      ["cancelled"],
    );
  }
  assert.equal(typeof report.metrics.wallMs, "number");
  await server.waitFor(() => server.stats().inFlight === 0);
  for (const record of server.requests().filter((r) => promptOf(r) !== "section 2")) {
    assert.equal(record.outcome, "client-closed");
    assert.ok(record.clientClosedAt - abortedAt < 200, `closed ${record.clientClosedAt - abortedAt} ms late`);
  }
});

test("settle keeps the successful outputs", async () => {
  server.script([{ match: { contains: "section 2" }, respond: openaiError(400, "bad param") }]);
  server.script([{ match: { contains: "section 4" }, respond: openaiError(403, "forbidden") }]);
  partsExceptS2();
  const report = await section({ provider, subtasks, failure: "settle" });
  assertInvariants(report, { maxRequests: 5 });
  assert.equal(report.output, "part-0\n\npart-1\n\npart-3");
  assert.deepEqual(
    report.results.map((r) => r.text),
    ["part-0", "part-1", null, "part-3", null],
  );
});

test("minSuccesses keeps the outputs when the quorum is met", async () => {
  server.script([{ match: { contains: "section 2" }, respond: openaiError(400, "bad param") }]);
  partsExceptS2();
  const report = await section({ provider, subtasks, failure: { minSuccesses: 4 } });
  assertInvariants(report, { maxRequests: 5 });
  assert.equal(report.output, "part-0\n\npart-1\n\npart-3\n\npart-4");
});

test("unreachable quorum rejects early with the report", async () => {
  server.script([{ match: { contains: "section 1" }, respond: openaiError(400, "bad param") }]);
  server.script([{ match: { contains: "section 2" }, respond: openaiError(400, "bad param") }]);
  partsExceptS2(1500);
  const error = await rejection(section({ provider, subtasks, failure: { minSuccesses: 4 } }));
  assert.equal(error.code, "QUORUM_NOT_MET");
  assert.equal(error.errors.length, 2);
  assert.ok(error.errors.every((e) => e instanceof Error && e.status === 400));
  assertInvariants(error.report, { maxRequests: 5 });
  assert.deepEqual(
    error.report.results.map((r) => r.status),
    ["cancelled", "failed", "failed", "cancelled", "cancelled"],
  );
});

test("dependents of a failed section are skipped", async () => {
  server.script([{ match: { contains: "section 2" }, respond: openaiError(400, "bad param") }]);
  partsExceptS2();
  const withDependents = [
    ...subtasks.slice(0, 3),
    { id: "s3", prompt: "section 3 after {{s2}}" },
    { id: "s4", prompt: "section 4", dependsOn: ["s3"] },
  ];
  const report = await section({ provider, subtasks: withDependents });
  assertInvariants(report, { maxRequests: 3 });
  assert.deepEqual(
    report.results.map((r) => r.status),
    ["ok", "ok", "failed", "skipped", "skipped"],
  );
  assert.deepEqual(report.results[3].error.skippedBecause, ["s2"]);
  assert.deepEqual(report.results[4].error.skippedBecause, ["s3"]);
  assert.deepEqual(report.results[4].attempts, []);
  assert.equal(server.stats().count, 3);
});
