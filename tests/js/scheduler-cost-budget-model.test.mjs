// budget.costUsd is never exceeded when each call's token counts match the input
// estimate plus maxTokens, also when `prices` maps several models and the server
// reports a model priced higher than the configured one.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { openai, section } from "parallel-task-executor";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { openaiOk, startScriptedServer } from "../support/scripted-server.mjs";

let server;
let uninstallGuard;

before(async () => {
  uninstallGuard = installLoopbackGuard();
  server = await startScriptedServer();
});

after(async () => {
  await server.close();
  uninstallGuard();
});

// The input estimate of the one-character prompt "q" (32 for the chat template,
// 8 for the message, 1 for the text), so each call uses exactly what it reserves.
const INPUT_TOKENS = 41;
const MAX_TOKENS = 10;

test("cost budget holds when the reply names a dearer model", async () => {
  const prices = {
    "model-small": { input: 1, output: 2 },
    "model-large": { input: 2, output: 4 },
  };
  server.setDefault(
    openaiOk("x", {
      model: "model-large",
      delayMs: 50,
      usage: { prompt_tokens: INPUT_TOKENS, completion_tokens: MAX_TOKENS, total_tokens: INPUT_TOKENS + MAX_TOKENS },
    }),
  );
  const provider = openai({ baseURL: `${server.url}/v1`, model: "model-small", maxTokens: MAX_TOKENS, prices });
  const largeCallUsd = (INPUT_TOKENS * 2 + MAX_TOKENS * 4) / 1e6;
  const costUsd = largeCallUsd * 5;

  const report = await section({
    provider,
    subtasks: Array.from({ length: 20 }, (_, k) => ({ id: `s${k}`, prompt: "q" })),
    concurrency: 20,
    budget: { costUsd },
  });

  const succeeded = report.results.filter((result) => result.status === "ok");
  for (const result of succeeded) {
    assert.equal(result.usage.inputTokens, INPUT_TOKENS);
    assert.equal(result.usage.outputTokens, MAX_TOKENS);
  }
  assert.ok(
    report.usage.costUsd <= costUsd + 1e-12,
    `spent $${report.usage.costUsd} of budget.costUsd $${costUsd} in ${server.stats().count} requests`,
  );
});
