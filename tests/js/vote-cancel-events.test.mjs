// When a vote settles early, each cancelled sample's open attempt ends with an
// `attempt-end` event (status "cancelled") and the sample ends with a `sample` event,
// as a section's cancelled subtasks get `attempt-end` and `subtask-end`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, vote } from "parallel-task-executor";

/** Creates a provider that returns "42" after `delays[n]` ms for its n-th call, and honours the signal. */
function delayed(delays) {
  let calls = 0;
  return custom(async (_request, { signal }) => {
    const ms = delays[calls++] ?? 1000;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    });
    return "42";
  });
}

test("vote cancel closes every attempt", async () => {
  const events = [];
  const result = await vote({
    provider: delayed([5, 10, 15, 1000, 1000, 1000]),
    prompt: "q",
    voters: 6,
    rule: { firstTo: 3 },
    onEvent: (event) => events.push(event),
  });
  assert.equal(result.cancelled, 3);

  const started = events.filter((e) => e.type === "attempt-start").map((e) => e.sample);
  const ended = events.filter((e) => e.type === "attempt-end").map((e) => e.sample);
  assert.deepEqual(ended.toSorted(), started.toSorted(), "each attempt-start has an attempt-end");
});

test("vote cancel emits sample event", async () => {
  const events = [];
  const result = await vote({
    provider: delayed([5, 10, 15, 1000, 1000, 1000]),
    prompt: "q",
    voters: 6,
    rule: { firstTo: 3 },
    onEvent: (event) => events.push(event),
  });

  const sampled = events.filter((e) => e.type === "sample").map((e) => e.sample);
  assert.deepEqual(
    sampled.toSorted(),
    result.samples.map((s) => s.index),
    "every sample, cancelled ones included, has a sample event",
  );
  for (const sample of result.samples.filter((s) => s.status === "cancelled")) {
    const event = events.find((e) => e.type === "sample" && e.sample === sample.index);
    assert.equal(event?.status, "cancelled");
  }
});

test("vote deadline closes every attempt", async () => {
  const events = [];
  await assert.rejects(
    vote({
      provider: delayed([1000, 1000, 1000]),
      prompt: "q",
      voters: 3,
      deadlineMs: 50,
      onEvent: (event) => events.push(event),
    }),
    { code: "DEADLINE_EXCEEDED" },
  );

  const started = events.filter((e) => e.type === "attempt-start").map((e) => e.sample);
  const ended = events.filter((e) => e.type === "attempt-end").map((e) => e.sample);
  assert.equal(started.length, 3);
  assert.deepEqual(ended.toSorted(), started.toSorted(), "each attempt-start has an attempt-end");
});
