// finishSection, evaluateVote and finishVote called without their outcomes argument
// reject (or throw) with INVALID_OPTIONS naming `outcomes`, like any other bad
// argument, not with a TypeError from inside the library's glue code.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, evaluateVote, finishSection, finishVote } from "parallel-task-executor";

const provider = custom(async () => "unused");
const sectionOptions = { provider, subtasks: [{ id: "a", prompt: "x" }] };
const voteOptions = { provider, prompt: "q", voters: 3 };

function isOutcomesError(error) {
  assert.equal(error.code, "INVALID_OPTIONS", `got ${error.name}: ${error.message}`);
  assert.match(error.message, /outcomes/);
  return true;
}

test("finishSection without outcomes", async () => {
  await assert.rejects(finishSection(sectionOptions), isOutcomesError);
});

test("finishVote without outcomes", async () => {
  await assert.rejects(finishVote(voteOptions), isOutcomesError);
});

test("evaluateVote without outcomes", () => {
  assert.throws(() => evaluateVote(voteOptions), isOutcomesError);
});
