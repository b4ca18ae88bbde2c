// Under `conflicts: "collect"` a JSON merge keeps every value. Subtasks a and b
// disagree inside an object ($.x.y), and subtask c then makes $.x itself a conflict.
// No subtask's value is dropped, and each conflict value names only the subtasks
// that produced it.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, section } from "parallel-task-executor";

const OUTPUTS = { A: '{"x": {"y": 1}}', B: '{"x": {"y": 2}}', C: '{"x": 5}' };

const provider = custom(async (request) => OUTPUTS[request.messages.at(-1).content]);

const subtasks = [
  { id: "a", prompt: "A" },
  { id: "b", prompt: "B" },
  { id: "c", prompt: "C" },
];

test("collect keeps nested values under a later conflict", async () => {
  const report = await section({ provider, subtasks, merge: "json", conflicts: "collect" });

  const text = JSON.stringify(report.output);
  assert.ok(text.includes("2"), `subtask b's value 2 is missing from the output ${text}`);
});

test("conflict value names only the subtasks behind it", async () => {
  const report = await section({ provider, subtasks, merge: "json", conflicts: "collect" });

  const atX = report.conflicts.find((c) => c.path === "$.x");
  assert.ok(atX, "a conflict at $.x is reported");
  const objectValue = atX.values.find((v) => typeof v.value === "object");
  // The value {y: 1} is a's output only, because b's output at $.x was {y: 2}.
  const claimed = JSON.stringify(objectValue);
  assert.ok(
    !(objectValue.subtasks.includes("b") && objectValue.value.y === 1),
    `the conflict says subtask b produced {"y": 1}: ${claimed}`,
  );
});
