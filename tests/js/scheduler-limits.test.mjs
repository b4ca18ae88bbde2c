// Limits of the shared scheduler in Node against the scripted server. maxRequests
// and the token and cost budgets are never exceeded, and a limiter bounds several
// runs at once and shares their cool-downs. The per-attempt timeout covers the whole
// body, and custom providers count against the concurrency.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { createLimiter, custom, openai, section } from "parallel-task-executor";
import { openaiOk } from "../support/scripted-server.mjs";
import { promptOf, provider, server, tasks, useScriptedProvider } from "../support/scripted-provider.mjs";

useScriptedProvider();

function assertAllReported(report, count) {
  assert.deepEqual(
    report.results.map((r) => r.id),
    Array.from({ length: count }, (_, k) => `s${k}`),
  );
  for (const result of report.results) {
    assert.ok(["ok", "failed", "cancelled", "skipped"].includes(result.status), result.status);
  }
}

test("maxRequests stops retries before the budget is exceeded", async () => {
  server.setDefault({ status: 503, body: "unavailable" });
  const report = await section({
    provider,
    subtasks: tasks(10),
    maxRetries: 5,
    maxRequests: 50,
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
  });
  assertAllReported(report, 10);
  assert.equal(server.stats().count, 50);
  assert.equal(report.metrics.requests, 50);
  const exhausted = report.results.filter((r) => r.error.code === "BUDGET_EXCEEDED");
  assert.ok(exhausted.length > 0);
  for (const result of exhausted) {
    assert.equal(result.status, "failed");
    assert.match(result.error.message, /request budget exhausted: maxRequests \(50\)/);
    assert.equal(result.error.limit, "maxRequests");
    assert.equal(result.error.cause.status, 503);
  }
  const attempts = report.results.reduce((sum, r) => sum + r.attempts.length, 0);
  assert.equal(attempts, 50);
});

test("token budget waits for reservations to settle", async () => {
  const limited = openai({ baseURL: `${server.url}/v1`, model: "scripted", maxTokens: 100 });
  server.setDefault(openaiOk("ok", { delayMs: 150 }));
  // Each call reserves its input estimate (about 6 tokens) plus maxTokens, so two
  // reservations fit in 250 tokens; each call really uses 10.
  const report = await section({ provider: limited, subtasks: tasks(5), budget: { tokens: 250 } });
  assertAllReported(report, 5);
  assert.ok(report.results.every((r) => r.status === "ok"));
  assert.ok(server.stats().maxInFlight <= 2, `${server.stats().maxInFlight} in flight`);
  assert.equal(server.stats().count, 5);
  assert.deepEqual(report.usage, { inputTokens: 45, outputTokens: 5, costUsd: null });
});

test("token budget too small for one call fails before sending", async () => {
  const limited = openai({ baseURL: `${server.url}/v1`, model: "scripted", maxTokens: 100 });
  const report = await section({ provider: limited, subtasks: tasks(2), budget: { tokens: 50 } });
  assertAllReported(report, 2);
  for (const result of report.results) {
    assert.equal(result.error.code, "BUDGET_EXCEEDED");
    assert.equal(result.error.limit, "budget.tokens");
    assert.match(result.error.message, /needs up to \d+ tokens/);
  }
  assert.equal(server.stats().count, 0);
});

test("token budget needs maxTokens on every provider", async () => {
  const error = await section({ provider, subtasks: tasks(1), budget: { tokens: 1000 } }).then(
    () => assert.fail("the options should be rejected"),
    (error_) => error_,
  );
  assert.ok(error instanceof TypeError);
  assert.equal(error.code, "INVALID_OPTIONS");
  assert.match(error.message, /^subtasks\[0\]\.provider: budget\.tokens is set/);
  assert.equal(server.stats().count, 0);
});

test("cost budget is never exceeded", async () => {
  const priced = openai({
    baseURL: `${server.url}/v1`,
    model: "scripted",
    maxTokens: 100,
    prices: { scripted: { input: 1, output: 10 } },
  });
  server.setDefault(openaiOk("ok", { delayMs: 50 }));
  // A call may cost about $0.001006 before it runs and really costs $0.000019.
  const report = await section({ provider: priced, subtasks: tasks(4), budget: { costUsd: 0.0015 } });
  assertAllReported(report, 4);
  assert.ok(report.results.every((r) => r.status === "ok"));
  assert.equal(server.stats().maxInFlight, 1);
  assert.ok(report.usage.costUsd <= 0.0015);
  assert.ok(Math.abs(report.usage.costUsd - 4 * 0.000_019) < 1e-9, `${report.usage.costUsd}`);
});

test("shared limiter bounds two runs at once", async () => {
  server.setDefault(openaiOk("ok", { delayMs: 150 }));
  const limiter = createLimiter(3);
  const [a, b] = await Promise.all([
    section({ provider, subtasks: tasks(6, "run a"), concurrency: 4, limiter }),
    section({ provider, subtasks: tasks(6, "run b"), concurrency: 4, limiter }),
  ]);
  assertAllReported(a, 6);
  assertAllReported(b, 6);
  assert.ok([...a.results, ...b.results].every((r) => r.status === "ok"));
  assert.equal(server.stats().count, 12);
  assert.ok(server.stats().maxInFlight <= 3, `${server.stats().maxInFlight} in flight`);
  // The runs overlapped: run b started before run a was done.
  const ofRun = (name) => server.requests().filter((r) => promptOf(r).startsWith(name));
  const bStart = Math.min(...ofRun("run b").map((r) => r.receivedAt));
  const aEnd = Math.max(...ofRun("run a").map((r) => r.finishedAt));
  assert.ok(bStart < aEnd, "run b waited for the whole of run a");
});

test("shared limiter shares the cool-down after a 429", async () => {
  server.setDefault((record) =>
    record.seq === 1
      ? { status: 429, headers: { "retry-after": "1" }, body: { error: { message: "slow down" } } }
      : openaiOk("ok"),
  );
  const limiter = createLimiter(4);
  // Start the second run only once the first has seen the 429, not merely once the
  // server has sent it: a busy machine can take a while between the two.
  let sawLimit;
  const limitSeen = new Promise((resolve) => {
    sawLimit = resolve;
  });
  const first = section({
    provider,
    subtasks: tasks(1, "run a"),
    limiter,
    onEvent: (event) => event.type === "rate-limited" && sawLimit(),
  });
  await limitSeen;
  const limited = server.requests()[0];
  const report = await section({ provider, subtasks: tasks(1, "run b"), limiter });
  await first;
  assert.equal(report.results[0].status, "ok");
  const other = server.requests().find((r) => promptOf(r) === "run b 0");
  assert.ok(other.receivedAt >= limited.respondedAt + 1000 - 50, "the other run went into the cool-down");
});

test("timeout covers the whole body", async () => {
  const slowBody = openaiOk("late");
  server.setDefault((record) =>
    record.seq === 1
      ? {
          status: 200,
          headers: { "content-type": "application/json" },
          chunks: [JSON.stringify(slowBody.body).slice(0, 20), { data: JSON.stringify(slowBody.body).slice(20), delayMs: 3000 }],
        }
      : openaiOk("in time"),
  );
  const report = await section({ provider, subtasks: tasks(1), timeoutMs: 400, retry: { baseDelayMs: 5 } });
  assert.equal(report.output, "in time");
  const [first] = server.requests();
  assert.equal(first.outcome, "client-closed");
  assert.ok(first.respondedAt - first.receivedAt < 100, "the headers came at once");
  assert.ok(first.clientClosedAt - first.receivedAt >= 350, `closed after ${first.clientClosedAt - first.receivedAt} ms`);
  assert.match(report.results[0].attempts[0].error.message, /timed out after 400 ms/);
  assert.equal(report.results[0].attempts[0].error.providerType, "timeout");
});

test("custom providers count against the concurrency", async () => {
  let running = 0;
  let maxRunning = 0;
  const slow = custom(async (request, { signal }) => {
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((resolve) => setTimeout(resolve, 50));
    running -= 1;
    assert.equal(signal.aborted, false);
    return { text: `did ${request.messages[0].content}` };
  });
  const report = await section({ provider: slow, subtasks: tasks(9), concurrency: 3 });
  assertAllReported(report, 9);
  assert.equal(maxRunning, 3);
  assert.equal(report.metrics.maxInFlight, 3);
  assert.equal(report.results[8].text, "did section 8");
});

test("custom provider's signal aborts with the run", async () => {
  const signals = [];
  const hanging = custom((request, { signal }) => {
    signals.push(signal);
    return new Promise((resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason));
    });
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const error = await section({ provider: hanging, subtasks: tasks(3), signal: controller.signal }).then(
    () => assert.fail("the run should reject"),
    (error_) => error_,
  );
  assert.equal(error.code, "ABORTED");
  assert.equal(signals.length, 3);
  assert.ok(signals.every((s) => s.aborted));
});
