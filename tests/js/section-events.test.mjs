// Events and warnings of a sectioning run against the scripted server: the order of
// events for retries, rate limits and cancellation, a listener that throws, and the
// warning when the run reached far less parallelism than its plan allowed.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { section } from "parallel-task-executor";
import { openaiError, openaiOk } from "../support/scripted-server.mjs";
import { promptOf, provider, server, tasks, useScriptedProvider } from "../support/scripted-provider.mjs";

useScriptedProvider();

/** Returns the types of one subtask's events in order. */
function typesOf(events, id) {
  return events.filter((e) => e.subtask === id).map((e) => e.type);
}

test("events follow the run in order", async () => {
  server.setDefault((record) =>
    record.seq === 1
      ? { status: 429, headers: { "retry-after": "0.2" }, body: { error: { message: "slow down" } } }
      : openaiOk(`part ${promptOf(record).at(-1)}`),
  );
  const events = [];
  const report = await section({
    provider,
    subtasks: [...tasks(2), { id: "s2", prompt: "after {{s0}}" }],
    concurrency: 1,
    onEvent: (event) => events.push(event),
  });

  const types = events.map((e) => e.type);
  assert.equal(types[0], "run-start");
  assert.equal(types.at(-1), "run-end");
  assert.equal(types.at(-2), "merge");
  assert.deepEqual(events[0].phases, [["s0", "s1"], ["s2"]]);
  assert.equal(events.at(-1).status, "ok");
  assert.ok(events.every((e) => e.runId === report.runId));
  assert.ok(events.every((e, i) => i === 0 || e.at >= events[i - 1].at), "times go forward");
  assert.deepEqual(typesOf(events, "s0"), [
    "attempt-start",
    "attempt-end",
    "retry",
    "rate-limited",
    "attempt-start",
    "attempt-end",
    "subtask-end",
  ]);
  assert.deepEqual(typesOf(events, "s2"), ["attempt-start", "attempt-end", "subtask-end"]);
  const retry = events.find((e) => e.type === "retry");
  assert.ok(retry.delayMs >= 200, `${retry.delayMs}`);
  assert.equal(retry.status, 429);
  const limited = events.find((e) => e.type === "rate-limited");
  assert.equal(limited.waitMs, 200);
  // s2 depends on s0, so it ends after s0.
  const ends = events.filter((e) => e.type === "subtask-end").map((e) => e.subtask);
  assert.ok(ends.indexOf("s2") > ends.indexOf("s0"));
});

test("cancelled subtasks end with events too", async () => {
  server.script([{ match: { contains: "section 1" }, respond: { ...openaiError(400, "bad param"), delayMs: 30 } }]);
  server.setDefault(openaiOk("slow", { delayMs: 3000 }));
  const events = [];
  const error = await section({
    provider,
    subtasks: [...tasks(3), { id: "s3", prompt: "after {{s0}}" }],
    failure: "fail-fast",
    onEvent: (event) => events.push(event),
  }).then(
    () => assert.fail("the run should reject"),
    (error_) => error_,
  );
  assert.equal(error.code, "PROVIDER_ERROR");

  const starts = events.filter((e) => e.type === "attempt-start").length;
  const ends = events.filter((e) => e.type === "attempt-end").length;
  assert.equal(starts, 3);
  assert.equal(ends, starts, "every attempt that started also ended");

  assert.deepEqual(
    events.filter((e) => e.type === "subtask-end").map((e) => [e.subtask, e.status]),
    [
      ["s1", "failed"],
      ["s0", "cancelled"],
      ["s2", "cancelled"],
      ["s3", "cancelled"],
    ],
  );
  assert.deepEqual(
    events.filter((e) => e.type === "cancelled").map((e) => [e.subtask, e.reason]),
    [
      ["s0", "fail-fast"],
      ["s2", "fail-fast"],
      ["s3", "fail-fast"],
    ],
  );
  assert.equal(events.at(-1).type, "run-end");
  assert.equal(events.at(-1).status, "PROVIDER_ERROR");
});

test("throwing onEvent is reported once and the run goes on", async () => {
  server.setDefault(openaiOk("fine"));
  let calls = 0;
  const report = await section({
    provider,
    subtasks: tasks(3),
    onEvent() {
      calls += 1;
      throw new Error("listener broke");
    },
  });
  assert.equal(report.output, "fine\n\nfine\n\nfine");
  const thrown = report.warnings.filter((w) => w.code === "on-event-threw");
  assert.equal(thrown.length, 1);
  assert.match(thrown[0].message, /listener broke/);
  // Every event was still delivered: run-start, the warning, 3 × (start, end,
  // subtask-end), merge and run-end.
  assert.equal(calls, 1 + 1 + 9 + 1 + 1);
});

test("low parallelism is warned about", async () => {
  // Each section first gets a 503 asking for a 1 s wait, so the run spends most of
  // its time waiting instead of in flight.
  server.setDefault((record) =>
    record.seq <= 4
      ? { status: 503, headers: { "retry-after": "1" }, body: "busy" }
      : openaiOk("ok", { delayMs: 50 }),
  );
  const report = await section({ provider, subtasks: tasks(4) });
  assert.equal(report.metrics.expectedParallelism, 4);
  assert.ok(report.metrics.parallelism < 1.5, `${report.metrics.parallelism}`);
  const warning = report.warnings.find((w) => w.code === "low-parallelism");
  assert.ok(warning, JSON.stringify(report.warnings));
  assert.match(warning.message, /allowed a parallelism of 4\.0/);

  // A run that keeps its requests in flight gets no warning.
  server.reset();
  server.setDefault(openaiOk("ok", { delayMs: 200 }));
  const busy = await section({ provider, subtasks: tasks(4) });
  assert.ok(busy.metrics.parallelism >= 2, `${busy.metrics.parallelism}`);
  assert.deepEqual(busy.warnings, []);
  assert.ok(busy.metrics.busyMs >= 4 * 200 - 40);
  assert.ok(busy.metrics.criticalPathMs >= 200 - 10);
});
