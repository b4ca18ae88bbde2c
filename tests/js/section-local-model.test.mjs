// A real sectioning job on the local model (SmolLM2-135M behind llama.cpp): three
// independent subtasks and one that depends on two of them, whose prompt must carry
// their outputs.

import assert from "node:assert/strict";
import { test } from "node:test";

import { openai, section } from "parallel-task-executor";
import { localModel } from "../support/model.mjs";

test("local model runs a two-phase plan", async () => {
  const { baseURL, model } = await localModel();
  // The provider's own fetch records each request body, so the test can read the
  // prompt the dependent subtask really sent.
  const sent = [];
  const provider = openai({
    baseURL,
    model,
    temperature: 0,
    maxTokens: 24,
    fetch(url, init) {
      sent.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
  const events = [];
  const report = await section({
    provider,
    subtasks: [
      { id: "fruit", prompt: "Name one fruit. Answer with one word." },
      { id: "color", prompt: "Name one color. Answer with one word." },
      { id: "animal", prompt: "Name one animal. Answer with one word." },
      { id: "story", prompt: "Write one sentence about a {{color}} {{fruit}}." },
    ],
    concurrency: 3,
    timeoutMs: 60_000,
    onEvent: (event) => events.push(event),
  });

  assert.deepEqual(
    report.results.map((r) => [r.id, r.status]),
    [
      ["fruit", "ok"],
      ["color", "ok"],
      ["animal", "ok"],
      ["story", "ok"],
    ],
  );
  for (const result of report.results) {
    assert.ok(result.text.trim().length > 0, `${result.id} is empty`);
    assert.ok(result.usage.outputTokens > 0, `${result.id} reported no usage`);
  }
  assert.deepEqual(report.metrics.phases, [["fruit", "color", "animal"], ["story"]]);

  const [fruit, color, , story] = report.results;
  const storyRequest = sent.find((body) => body.messages.at(-1).content.startsWith("Write one sentence"));
  assert.equal(
    storyRequest.messages.at(-1).content,
    `Write one sentence about a ${color.text} ${fruit.text}.`,
  );
  // The dependent started only after both of its dependencies had finished.
  assert.ok(story.startedMs >= Math.max(fruit.finishedMs, color.finishedMs));
  const storyStart = events.find((e) => e.type === "attempt-start" && e.subtask === "story");
  const ended = events.filter((e) => e.type === "subtask-end" && e.at <= storyStart.at).map((e) => e.subtask);
  assert.ok(ended.includes("fruit"), `${ended}`);
  assert.ok(ended.includes("color"), `${ended}`);
  assert.equal(sent.length, 4);
  assert.ok(report.usage.inputTokens > 0);
});
