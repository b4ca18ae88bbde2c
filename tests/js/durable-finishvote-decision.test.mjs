// finishVote returns the same result as vote() and, like aggregate(), counts the
// answers in the order given. So for a `firstTo` rule, its `decision` gives the
// number of samples after which the winner was settled, as aggregate() does
// (`atMs` may be null).

import assert from "node:assert/strict";
import { test } from "node:test";

import { aggregate, custom, finishVote } from "parallel-task-executor";

const provider = custom(async () => "unused");

test("finishVote reports the firstTo decision", async () => {
  const options = { provider, prompt: "q", voters: 3, rule: { firstTo: 2 }, maxSamples: 5 };
  // In finish order: sample 1, 0, 2, 3. The answer "4" reaches 2 votes at the third.
  const outcomes = [
    { index: 1, status: "ok", text: "5" },
    { index: 0, status: "ok", text: "4" },
    { index: 2, status: "ok", text: "4" },
    { index: 3, status: "ok", text: "5" },
  ];
  const aggregated = aggregate(["5", "4", "4", "5"], { rule: { firstTo: 2 } });
  assert.equal(aggregated.decision.afterSamples, 3);

  const result = await finishVote(options, outcomes);
  assert.equal(result.winner, "4");
  assert.ok(result.decision, "decision is null");
  assert.equal(result.decision.afterSamples, 3);
});
