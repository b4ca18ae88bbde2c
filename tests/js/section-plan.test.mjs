// Sectioning plans against the scripted server: bounded waves, a subtask starting
// as soon as its own dependencies finish, single-pass placeholder substitution,
// and plans rejected before any request is sent.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { section } from "parallel-task-executor";
import { openaiOk } from "../support/scripted-server.mjs";
import { promptOf, provider, server, useScriptedProvider } from "../support/scripted-provider.mjs";

useScriptedProvider();

/** Returns a responder that sends `out:<prompt>` after `delayMs(prompt)` milliseconds. */
function echo(delayMs) {
  return (record) => openaiOk(`out:${promptOf(record)}`, { delayMs: delayMs(promptOf(record)) });
}

function requestFor(prefix) {
  const record = server.requests().find((r) => promptOf(r).startsWith(prefix));
  assert.ok(record, `no request starts with ${JSON.stringify(prefix)}`);
  return record;
}

/** Checks that every subtask appears once with a known status and the server stayed in bounds. */
function assertInvariants(report, ids, { concurrency } = {}) {
  assert.deepEqual(
    report.results.map((r) => r.id),
    ids,
  );
  for (const result of report.results) {
    assert.ok(["ok", "failed", "cancelled", "skipped"].includes(result.status), result.status);
  }
  if (concurrency !== undefined) {
    assert.ok(server.stats().maxInFlight <= concurrency, `maxInFlight ${server.stats().maxInFlight}`);
  }
}

test("twelve subtasks at concurrency 4 run in three waves", async () => {
  const delay = 300;
  server.setDefault(echo(() => delay));
  const subtasks = Array.from({ length: 12 }, (_, k) => ({ id: `s${k}`, prompt: `part ${k}` }));
  const report = await section({ provider, subtasks, concurrency: 4 });

  const ids = subtasks.map((s) => s.id);
  assertInvariants(report, ids, { concurrency: 4 });
  assert.equal(server.stats().count, 12);
  assert.equal(report.output, subtasks.map((s) => `out:${s.prompt}`).join("\n\n"));

  const records = server.requests().sort((a, b) => a.receivedAt - b.receivedAt);
  assert.ok(records.every((r) => r.inFlightAtArrival <= 4));
  const waves = [records.slice(0, 4), records.slice(4, 8), records.slice(8, 12)];
  for (const [index, wave] of waves.entries()) {
    const firstFinish = Math.min(...wave.map((r) => r.finishedAt));
    // The four requests of a wave are in flight together.
    assert.ok(
      wave.every((r) => r.receivedAt < firstFinish),
      `wave ${index} did not overlap`,
    );
    if (index > 0) {
      // A wave starts only once a request of the previous wave has finished.
      const previousFinish = Math.min(...waves[index - 1].map((r) => r.finishedAt));
      assert.ok(
        wave.every((r) => r.receivedAt >= previousFinish),
        `wave ${index} started before wave ${index - 1} finished`,
      );
    }
  }
  assert.equal(report.metrics.maxInFlight, 4);
  assert.deepEqual(report.metrics.phases, [ids]);
});

test("diamond runs its middle pair together", async () => {
  const delay = 200;
  server.setDefault(echo(() => delay));
  const subtasks = [
    { id: "top", prompt: "top" },
    { id: "left", prompt: "left {{top}}" },
    { id: "right", prompt: "right {{top}}" },
    { id: "bottom", prompt: "bottom {{left}} and {{right}}" },
  ];
  const report = await section({ provider, subtasks });
  assertInvariants(report, ["top", "left", "right", "bottom"]);

  const top = requestFor("top");
  const left = requestFor("left");
  const right = requestFor("right");
  const bottom = requestFor("bottom");
  assert.ok(left.receivedAt >= top.finishedAt);
  assert.ok(right.receivedAt >= top.finishedAt);
  // Both middle requests are in flight at once.
  assert.ok(left.receivedAt < right.finishedAt);
  assert.ok(right.receivedAt < left.finishedAt);
  assert.ok(bottom.receivedAt >= Math.max(left.finishedAt, right.finishedAt));
  assert.equal(promptOf(bottom), "bottom out:left out:top and out:right out:top");

  assert.deepEqual(report.metrics.phases, [["top"], ["left", "right"], ["bottom"]]);
  assert.equal(report.metrics.criticalPath.length, 3);
  assert.ok(report.metrics.criticalPathMs >= 3 * delay - 30, `${report.metrics.criticalPathMs}`);
  assert.ok(report.metrics.expectedParallelism > 1);
});

test("dependent starts when its own dependencies finish", async () => {
  server.setDefault(echo((prompt) => (prompt.startsWith("slow") ? 1500 : 100)));
  const report = await section({
    provider,
    subtasks: [
      { id: "fast", prompt: "fast" },
      { id: "slow", prompt: "slow" },
      { id: "next", prompt: "next after {{fast}}" },
    ],
  });
  assertInvariants(report, ["fast", "slow", "next"]);
  const next = requestFor("next");
  const slow = requestFor("slow");
  assert.ok(next.receivedAt >= requestFor("fast").finishedAt);
  // `next` does not wait for the end of the first phase.
  assert.ok(next.receivedAt < slow.finishedAt, "next waited for slow");
  assert.deepEqual(report.metrics.phases, [["fast", "slow"], ["next"]]);
});

test("placeholder text in an output stays literal", async () => {
  server.setDefault((record) => openaiOk(promptOf(record) === "a" ? "see {{b}} and {{c}}" : "bee"));
  const report = await section({
    provider,
    subtasks: [
      { id: "a", prompt: "a" },
      { id: "b", prompt: "b" },
      { id: "c", messages: [{ role: "user", content: "A={{a}} B={{ b }}" }], system: "context {{b}}" },
    ],
  });
  assertInvariants(report, ["a", "b", "c"]);
  const c = requestFor("A=");
  assert.equal(promptOf(c), "A=see {{b}} and {{c}} B=bee");
  assert.equal(c.body.messages[0].content, "context bee");
});

test("cycle is rejected before any request", async () => {
  const error = await section({
    provider,
    subtasks: [
      { id: "a", prompt: "uses {{c}}" },
      { id: "b", prompt: "uses {{a}}" },
      { id: "c", prompt: "x", dependsOn: ["b"] },
      { id: "free", prompt: "independent" },
    ],
  }).then(
    () => assert.fail("the plan should be rejected"),
    (error_) => error_,
  );
  assert.equal(error.code, "DEPENDENCY_CYCLE");
  assert.deepEqual(error.cycle, ["a", "c", "b", "a"]);
  assert.match(error.message, /"a" depends on "c", "c" depends on "b", "b" depends on "a"/);
  assert.equal(server.stats().count, 0);
});

test("unknown dependency is rejected before any request", async () => {
  for (const subtasks of [
    [
      { id: "schema", prompt: "x" },
      { id: "api", prompt: "routes for {{shema}}" },
    ],
    [
      { id: "schema", prompt: "x" },
      { id: "api", prompt: "y", dependsOn: ["schema", "ui"] },
    ],
  ]) {
    const error = await section({ provider, subtasks }).then(
      () => assert.fail("the plan should be rejected"),
      (error_) => error_,
    );
    assert.equal(error.code, "UNKNOWN_DEPENDENCY");
    assert.equal(error.ids[0], "api");
    assert.match(error.message, /subtasks\[1\]/);
  }
  assert.equal(server.stats().count, 0);
});

test("duplicate ids are rejected with both positions", async () => {
  const error = await section({
    provider,
    subtasks: [
      { id: "a", prompt: "x" },
      { id: "a", prompt: "y" },
    ],
  }).then(
    () => assert.fail("the plan should be rejected"),
    (error_) => error_,
  );
  assert.ok(error instanceof TypeError);
  assert.equal(error.code, "INVALID_OPTIONS");
  assert.deepEqual(error.ids, ["a"]);
  assert.match(error.message, /subtasks\[1\]\.id: duplicate id "a", also used by subtasks\[0\]/);
  assert.equal(server.stats().count, 0);
});
