// When every judge call of `rule: { score }` fails, the vote rejects with ALL_FAILED and
// `err.report.scores` lists every candidate with its problem and judge attempts, as it
// does when only some judge calls fail.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, vote } from "parallel-task-executor";

const criteria = [
  { name: "accuracy", weight: 40 },
  { name: "clarity", weight: 30 },
  { name: "style", weight: 30 },
];

test("judge failures stay in report.scores", async () => {
  let calls = 0;
  const provider = custom(async () => ["draft A", "draft B"][calls++ % 2]);
  const judge = custom(async () => {
    throw new Error("judge down");
  });

  const error = await vote({
    provider,
    prompt: "Write a draft.",
    voters: 2,
    rule: { score: { criteria, passScore: 80 } },
    judge,
    maxRetries: 0,
  }).then(
    () => assert.fail("the vote resolved"),
    (e) => e,
  );

  assert.equal(error.code, "ALL_FAILED");
  assert.equal(error.errors.length, 2);
  const scores = error.report.scores;
  assert.equal(scores?.length, 2, `report.scores is ${JSON.stringify(scores)}`);
  for (const candidate of scores) {
    assert.equal(candidate.total, null);
    assert.match(candidate.problem, /judge down/);
    assert.equal(candidate.judge.attempts.length, 1);
  }
});
