// `metrics.maxInFlight` counts the requests a run had open at once, so with a shared
// `createLimiter(3)` and `concurrency: 5` it is at most 3, the count the server saw.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { createLimiter, openai, section } from "parallel-task-executor";

let server;
let baseURL;
let open = 0;
let maxOpen = 0;

before(async () => {
  server = http.createServer(async (req, res) => {
    for await (const _chunk of req) {
      // Drain the request body.
    }
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    await new Promise((resolve) => setTimeout(resolve, 30));
    open -= 1;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
        usage: { prompt_tokens: 1, completion_tokens: 1 },
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

test("maxInFlight respects the limiter", async () => {
  const report = await section({
    provider: openai({ baseURL, model: "m" }),
    subtasks: [1, 2, 3, 4, 5].map((n) => ({ id: `s${n}`, prompt: `part ${n}` })),
    limiter: createLimiter(3),
    concurrency: 5,
  });

  assert.equal(maxOpen, 3, "the server saw at most 3 open requests");
  assert.equal(report.metrics.expectedParallelism, 3);
  assert.ok(report.metrics.maxInFlight <= 3, `metrics.maxInFlight is ${report.metrics.maxInFlight}`);
});
