// `budget.tokens` holds when a server counts more input tokens than a bare count of
// the prompt: chat templates add about 30 (llama.cpp serving SmolLM2 does). Here each
// call uses 30 input + 10 output tokens, one call at a time, against a budget of 100.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { openai, vote } from "parallel-task-executor";

let server;
let baseURL;
let requests = 0;

before(async () => {
  server = http.createServer(async (req, res) => {
    for await (const _chunk of req) {
      // Drain the request body.
    }
    requests += 1;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id: `r${requests}`,
        object: "chat.completion",
        model: "m",
        choices: [{ index: 0, message: { role: "assistant", content: "42" }, finish_reason: "stop" }],
        // Completion tokens stay within maxTokens, and the prompt count includes the chat template.
        usage: { prompt_tokens: 30, completion_tokens: 10, total_tokens: 40 },
      }),
    );
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseURL = `http://127.0.0.1:${server.address().port}/v1`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test("budget.tokens caps reported usage", async () => {
  const provider = openai({ baseURL, model: "m", maxTokens: 10 });
  const result = await vote({ provider, prompt: "q", voters: 10, concurrency: 1, budget: { tokens: 100 } });

  const used = result.usage.inputTokens + result.usage.outputTokens;
  assert.ok(used <= 100, `the run used ${used} tokens against budget.tokens 100 in ${requests} requests`);
});
