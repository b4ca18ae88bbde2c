// An outcome whose `index` is present but not a sample index (a negative number, a
// fraction, a string) raises INVALID_OPTIONS that calls the value invalid. The
// message never claims the index is missing ("is required") when it was given.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, evaluateVote } from "parallel-task-executor";

const provider = custom(async () => "unused");
const options = { provider, prompt: "q", voters: 3 };

for (const index of [-1, 0.5, "0"]) {
  test(`index ${JSON.stringify(index)} is called invalid`, () => {
    assert.throws(() => evaluateVote(options, [{ index, status: "ok", text: "4" }]), (error) => {
      assert.equal(error.code, "INVALID_OPTIONS");
      assert.match(error.message, /outcomes\[0\]\.index/);
      assert.doesNotMatch(error.message, /is required/, `the index was given: ${error.message}`);
      return true;
    });
  });
}
