// Under `failure: "fail-fast"` a run resolves only when every required subtask
// succeeded, so a required subtask skipped because its optional dependency failed
// rejects the run, with the report.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, section } from "parallel-task-executor";

test("fail-fast rejects a skipped required subtask", async () => {
  const provider = custom(async (request) => {
    if (request.messages.at(-1).content === "fail") {
      throw new Error("optional step failed");
    }
    return "ok";
  });

  const run = section({
    provider,
    failure: "fail-fast",
    maxRetries: 0,
    subtasks: [
      { id: "hint", prompt: "fail", required: false },
      { id: "answer", prompt: "Use {{hint}}" },
    ],
  });

  await assert.rejects(run, (error) => {
    assert.ok(error.report, "the rejection carries the report");
    const answer = error.report.results.find((r) => r.id === "answer");
    assert.equal(answer.status, "skipped");
    return true;
  });
});
