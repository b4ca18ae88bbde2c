// An unknown key in `rule` is rejected with a message that names the key and suggests
// the rule meant, as other options do ("did you mean `aheadBy`?").

import assert from "node:assert/strict";
import { test } from "node:test";

import { aggregate } from "parallel-task-executor";

test("rule key typo names the key", () => {
  assert.throws(() => aggregate(["a"], { rule: { aheadby: 2 } }), (error) => {
    assert.equal(error.code, "INVALID_OPTIONS");
    assert.match(error.message, /aheadby/);
    assert.match(error.message, /did you mean `?aheadBy`?/);
    return true;
  });
});

test("rule key typo threshold", () => {
  assert.throws(() => aggregate(["a"], { rule: { treshold: 0.5 } }), (error) => {
    assert.equal(error.code, "INVALID_OPTIONS");
    assert.match(error.message, /treshold/);
    assert.match(error.message, /threshold/);
    return true;
  });
});
