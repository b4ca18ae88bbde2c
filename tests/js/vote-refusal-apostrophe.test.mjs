// `redFlags: { refusal: true }` flags a refusal whatever apostrophe it uses: models often
// write "I’m sorry, but I can’t" with U+2019.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, vote } from "parallel-task-executor";

/** Creates a provider that returns `replies` in turn. */
function replying(replies) {
  let calls = 0;
  return custom(async () => replies[calls++ % replies.length]);
}

for (const refusal of ["I’m sorry, but I can’t help with that.", "I can’t assist with that request."]) {
  test(`refusal with U+2019: ${refusal}`, async () => {
    const result = await vote({
      provider: replying([refusal, "Paris", "Paris"]),
      prompt: "Capital of France?",
      voters: 3,
      redFlags: { refusal: true },
    });
    assert.equal(result.samples[0].status, "red-flagged");
    assert.equal(result.samples[0].reason, "refusal");
    assert.deepEqual(result.excluded, { refusal: 1 });
  });
}
