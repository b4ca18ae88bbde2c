// An outcome whose `text` is not a string (the Outcome type declares string or null) is
// rejected with INVALID_OPTIONS naming `outcomes[i].text`. It never silently becomes
// an empty output in finishSection or an empty answer in finishVote.

import assert from "node:assert/strict";
import { test } from "node:test";

import { custom, finishSection, finishVote } from "parallel-task-executor";

const provider = custom(async () => "unused");

test("finishSection rejects a numeric text", async () => {
  const options = { provider, merge: "keyed", subtasks: [{ id: "a", prompt: "x" }] };

  await assert.rejects(finishSection(options, [{ id: "a", status: "ok", text: 42 }]), (error) => {
    assert.equal(error.code, "INVALID_OPTIONS");
    assert.match(error.message, /outcomes\[0\]\.text/);
    return true;
  });
});

test("finishVote rejects a numeric text", async () => {
  const options = { provider, prompt: "q", voters: 1, extract: "number" };

  await assert.rejects(finishVote(options, [{ index: 0, status: "ok", text: 4 }]), (error) => {
    assert.equal(error.code, "INVALID_OPTIONS");
    assert.match(error.message, /outcomes\[0\]\.text/);
    return true;
  });
});
