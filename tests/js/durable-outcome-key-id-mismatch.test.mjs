// finishSection takes outcomes as `{ [id]: outcome }`. An outcome whose own `id`
// names another subtask than its key (an engine storing results under the wrong
// key) is rejected with INVALID_OPTIONS, so it is not counted as the key's subtask.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, finishSection } from "parallel-task-executor";

const provider = custom(async () => "unused");

test("outcome id must match its key", async () => {
  const options = {
    provider,
    merge: "keyed",
    subtasks: [
      { id: "a", prompt: "x" },
      { id: "b", prompt: "y" },
    ],
  };
  const outcomeOfB = { id: "b", status: "ok", text: "B's output" };

  await assert.rejects(finishSection(options, { a: outcomeOfB }), (error) => {
    assert.equal(error.code, "INVALID_OPTIONS");
    assert.match(error.message, /outcomes\.a/);
    return true;
  });
});
