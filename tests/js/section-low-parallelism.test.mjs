// The "low-parallelism" warning says calls "spent most of the run waiting (for a shared
// limiter, a rate-limit cool-down or a retry backoff)", so it appears only when they did,
// and not for calls that return at once, whose busy / wall is small with nothing to fix.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, section } from "parallel-task-executor";

test("instant calls get no low-parallelism warning", async () => {
  const provider = custom(async (request) => `done: ${request.messages.at(-1).content}`);
  const report = await section({
    provider,
    subtasks: [
      { id: "a", prompt: "a" },
      { id: "b", prompt: "b" },
      { id: "c", prompt: "c" },
    ],
  });

  assert.equal(report.metrics.expectedParallelism, 3);
  assert.ok(report.results.every((r) => r.attempts.length === 1), "no call was retried");
  const warning = report.warnings.find((w) => w.code === "low-parallelism");
  assert.equal(warning, undefined, warning?.message);
});
