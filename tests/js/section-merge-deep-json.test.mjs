// A JSON merge takes each output's JSON value whole. A valid object nested 200
// levels deep is merged as that object, or left out with a `not-json` warning. It is
// never replaced by one of its inner objects.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, section } from "parallel-task-executor";

const DEPTH = 200;

/** `{"l0": {"l1": ... {"l199": 1} ...}}`: each level has its own key. */
function nested(depth) {
  let text = "1";
  for (let level = depth - 1; level >= 0; level -= 1) {
    text = `{"l${level}": ${text}}`;
  }
  return text;
}

test("deeply nested output is not merged as a fragment", async () => {
  const deep = nested(DEPTH);
  assert.doesNotThrow(() => JSON.parse(deep), "the output is valid JSON");
  const provider = custom(async (request) => (request.messages.at(-1).content === "deep" ? deep : '{"other": 1}'));

  const report = await section({
    provider,
    merge: "json",
    subtasks: [
      { id: "deep", prompt: "deep" },
      { id: "flat", prompt: "flat" },
    ],
  });

  const keys = Object.keys(report.output);
  const warned = report.warnings.some((w) => w.code === "not-json");
  if (warned) {
    assert.deepEqual(keys, ["other"]);
  } else {
    assert.deepEqual(keys, ["l0", "other"], `the deep output was merged from an inner object: keys ${keys.join(", ")}`);
  }
});
