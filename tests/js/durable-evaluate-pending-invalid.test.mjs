// evaluateVote checks `pending`: an entry that is not a sample index (a string, a
// fraction, a negative number) or a `pending` that is not an array raises
// INVALID_OPTIONS naming `pending`. It is never dropped, because a dropped pending
// sample is listed in `next` and would run twice.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, evaluateVote } from "parallel-task-executor";

const provider = custom(async () => "unused");
const options = { provider, prompt: "q", voters: 3, extract: "number" };
const finished = [{ index: 0, status: "ok", text: "4" }];

function isPendingError(error) {
  assert.equal(error.code, "INVALID_OPTIONS", `got ${error.name}: ${error.message}`);
  assert.match(error.message, /pending/);
  return true;
}

for (const pending of [["1"], [1.5], [-1], 7]) {
  test(`pending ${JSON.stringify(pending)} is rejected`, () => {
    assert.throws(() => evaluateVote(options, finished, pending), isPendingError);
  });
}

test("string pending sample is not drawn again", () => {
  const adaptive = { ...options, rule: { aheadBy: 2 }, maxSamples: 6 };
  let result;
  try {
    result = evaluateVote(adaptive, finished, ["1"]);
  } catch {
    return;
  }
  assert.ok(!result.next.includes(1), `sample 1 is pending but next is ${JSON.stringify(result.next)}`);
});

test("pending index beyond maxSamples is named", () => {
  assert.throws(() => evaluateVote(options, finished, [1, 2, 50]), (error) => {
    assert.equal(error.code, "INVALID_OPTIONS");
    assert.match(error.message, /pending\[2\]|\b50\b/, `the message blames another value: ${error.message}`);
    return true;
  });
});
