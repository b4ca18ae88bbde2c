// runSample takes a sample index, an integer from 0 to maxSamples - 1. Any other
// number (2^32, NaN, a fraction, -1) is rejected with INVALID_OPTIONS naming `index`
// and showing the value given. It never runs another sample, such as sample 0.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, runSample } from "parallel-task-executor";

const calls = [];
const provider = custom(
  async (request) => {
    calls.push(request.seed);
    return "4";
  },
  { seed: 0 },
);
const options = { provider, prompt: "q", voters: 3 };

for (const index of [2 ** 32, Number.NaN, 1.5]) {
  test(`index ${index} is rejected`, async () => {
    calls.length = 0;
    await assert.rejects(runSample(options, index), (error) => {
      assert.equal(error.code, "INVALID_OPTIONS");
      assert.match(error.message, /index/);
      return true;
    });
    assert.deepEqual(calls, [], "no sample ran");
  });
}

test("index -1 is shown as given", async () => {
  await assert.rejects(runSample(options, -1), (error) => {
    assert.equal(error.code, "INVALID_OPTIONS");
    assert.doesNotMatch(error.message, /4294967295/, `the message shows a wrapped index: ${error.message}`);
    return true;
  });
});
