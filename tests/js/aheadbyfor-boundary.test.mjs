// aheadByFor({ accuracy, target }) returns the smallest k with
// 1 / (1 + ((1 - accuracy) / accuracy)^k) >= target, so a target computed by that very
// formula for k gets k back, despite rounding: accuracy 0.9 with target 0.9 gives 1.

import assert from "node:assert/strict";
import { test } from "node:test";

import { aheadByFor } from "parallel-task-executor";

/** Computes the reliability of aheadBy k by the formula the docs state. */
function reliability(accuracy, k) {
  return 1 / (1 + ((1 - accuracy) / accuracy) ** k);
}

const cases = [
  [0.75, 3],
  [0.8, 3],
  [0.95, 2],
  [0.95, 3],
  [0.99, 5],
];

for (const [accuracy, k] of cases) {
  test(`aheadByFor at the boundary: accuracy ${accuracy}, k ${k}`, () => {
    const target = reliability(accuracy, k);
    assert.equal(aheadByFor({ accuracy, target }), k, `target ${target}`);
  });
}

test("aheadByFor target equal to accuracy", () => {
  // One vote ahead is right exactly as often as one voter.
  assert.equal(aheadByFor({ accuracy: 0.9, target: 0.9 }), 1);
});
