// finishSection applies the failure policy as section() does: under "fail-fast", a
// required subtask that is skipped because its optional dependency failed rejects
// the run, with the report.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, finishSection, runSubtask, section } from "parallel-task-executor";

const provider = custom(async (request) => {
  if (request.messages.at(-1).content === "fail") {
    throw new Error("optional step failed");
  }
  return "ok";
});

const options = {
  provider,
  failure: "fail-fast",
  maxRetries: 0,
  subtasks: [
    { id: "hint", prompt: "fail", required: false },
    { id: "answer", prompt: "Use {{hint}}" },
  ],
};

test("section rejects the skipped required subtask", async () => {
  await assert.rejects(section(options), (error) => {
    assert.equal(error.report.results[1].status, "skipped");
    return true;
  });
});

test("finishSection rejects the same outcomes", async () => {
  const hint = await runSubtask(options, "hint");
  assert.equal(hint.status, "failed");

  await assert.rejects(finishSection(options, [hint]), (error) => {
    assert.ok(error.report, "the rejection carries the report");
    assert.equal(error.report.results[1].status, "skipped");
    assert.match(error.message, /answer/);
    return true;
  });
});
