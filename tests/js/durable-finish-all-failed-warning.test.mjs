// finishSection returns the same warnings as section() for the same outcomes: when
// every subtask failed, the report has an `all-failed` warning.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, finishSection, runSubtask, section } from "parallel-task-executor";

const provider = custom(async () => {
  throw new Error("down");
});

const options = { provider, maxRetries: 0, subtasks: [{ id: "only", prompt: "x" }] };

test("all-failed warning from section and finishSection", async () => {
  const inProcess = await section(options);
  const inProcessCodes = inProcess.warnings.map((w) => w.code);
  assert.ok(inProcessCodes.includes("all-failed"), "section() warns");

  const outcome = await runSubtask(options, "only");
  const finished = await finishSection(options, [outcome]);
  const finishedCodes = finished.warnings.map((w) => w.code);
  assert.deepEqual(finishedCodes, inProcessCodes);
});
