// Retries and rate limits of the shared scheduler against the scripted server. The
// cases are a 429 storm under a concurrency cap, Retry-After in seconds, as an HTTP
// date and as retry-after-ms, and a delay above the ceiling. Then a cool-down shared
// by siblings, which failures are retried, and request slots kept until each body
// has been read.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { anthropic, section } from "parallel-task-executor";
import { anthropicError, anthropicOk, openaiError, openaiOk } from "../support/scripted-server.mjs";
import { promptOf, provider, server, tasks, useScriptedProvider } from "../support/scripted-provider.mjs";

// Server-side times are taken when the request has been read, so a retry may
// appear this much earlier than the client's own wait.
const TOLERANCE_MS = 50;

useScriptedProvider();

/** Checks that every subtask appears once with a status and the server stayed in bounds. */
function assertInvariants(report, count, { maxRequests, concurrency } = {}) {
  assert.deepEqual(
    report.results.map((r) => r.id),
    Array.from({ length: count }, (_, k) => `s${k}`),
  );
  for (const result of report.results) {
    assert.ok(["ok", "failed", "cancelled", "skipped"].includes(result.status), result.status);
  }
  const stats = server.stats();
  if (maxRequests !== undefined) assert.ok(stats.count <= maxRequests, `${stats.count} requests`);
  if (concurrency !== undefined) assert.ok(stats.maxInFlight <= concurrency, `${stats.maxInFlight} in flight`);
}

/** For each prompt, its requests in arrival order. */
function requestsByPrompt() {
  const byPrompt = new Map();
  for (const record of server.requests().sort((a, b) => a.seq - b.seq)) {
    const list = byPrompt.get(promptOf(record)) ?? [];
    list.push(record);
    byPrompt.set(promptOf(record), list);
  }
  return byPrompt;
}

const RATE_LIMIT_BODY = {
  error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" },
};

/** Sends a 429 with `headers(record)` to the first `count` requests and `OK("42")` to later ones. */
function firstRateLimited(count, headers) {
  server.setDefault((record) => {
    if (record.seq <= count) return { status: 429, headers: headers(record), body: RATE_LIMIT_BODY };
    return openaiOk("42");
  });
}

/** Checks that each prompt's retry arrived no sooner than its 429 asked. */
function assertRetriesWaited(delayOf) {
  for (const [prompt, records] of requestsByPrompt()) {
    assert.equal(records.length, 2, `${prompt} was sent ${records.length} times`);
    const [limited, retry] = records;
    const earliest = limited.respondedAt + delayOf(limited) - TOLERANCE_MS;
    assert.ok(retry.receivedAt >= earliest, `${prompt} retried ${earliest - retry.receivedAt} ms early`);
  }
}

test("concurrency cap keeps a 429 storm away", async () => {
  const anthropicProvider = anthropic({
    baseURL: `${server.url}/v1`,
    model: "claude-scripted",
    apiKey: "sk-ant-test-key-0001",
    maxTokens: 64,
  });
  // The server allows 4 concurrent connections and returns 429 past that.
  server.setDefault((record, { inFlight }) => {
    if (inFlight > 4) {
      return {
        ...anthropicError(
          429,
          "rate_limit_error",
          "Number of concurrent connections has exceeded your rate limit.",
        ),
        headers: { "retry-after": "1" },
      };
    }
    return anthropicOk(`section-${promptOf(record).split(" ")[1]}`, { delayMs: 300 });
  });

  const capped = await section({ provider: anthropicProvider, subtasks: tasks(12), concurrency: 4 });
  assertInvariants(capped, 12, { maxRequests: 12, concurrency: 4 });
  assert.equal(server.requests().filter((r) => r.inFlightAtArrival > 4).length, 0);
  assert.equal(capped.output, Array.from({ length: 12 }, (_, k) => `section-${k}`).join("\n\n"));

  // Without a cap the storm happens, and retries after each cool-down still
  // complete every section.
  server.reset();
  const uncapped = await section({ provider: anthropicProvider, subtasks: tasks(12), maxRetries: 6 });
  assertInvariants(uncapped, 12);
  assert.ok(server.requests().some((r) => r.inFlightAtArrival > 4), "no 429 was provoked");
  assert.deepEqual(
    uncapped.results.map((r) => r.status),
    Array.from({ length: 12 }, () => "ok"),
  );
  assert.equal(uncapped.output, capped.output);
});

test("Retry-After in seconds is never undercut", async () => {
  firstRateLimited(3, () => ({ "Retry-After": "2" }));
  const report = await section({ provider, subtasks: tasks(3), maxRetries: 3 });
  assertInvariants(report, 3, { maxRequests: 6 });
  assert.equal(server.stats().count, 6);
  assert.equal(report.output, "42\n\n42\n\n42");
  assertRetriesWaited(() => 2000);
  // Jitter spreads the retries, so they do not land in the same millisecond.
  const retries = server.requests().slice(3).map((r) => r.receivedAt);
  assert.ok(Math.max(...retries) - Math.min(...retries) > 1, `${retries}`);
  for (const result of report.results) {
    assert.equal(result.attempts.length, 2);
    assert.equal(result.attempts[0].error.status, 429);
    assert.equal(result.attempts[0].error.retryAfterMs, 2000);
  }
});

test("Retry-After as an HTTP date is honoured", async () => {
  const targets = new Map();
  server.setDefault((record) => {
    if (record.seq === 1) {
      // HTTP dates have whole seconds; round up so the wait is at least 2 s.
      const target = Math.ceil((Date.now() + 2000) / 1000) * 1000;
      targets.set(promptOf(record), target);
      return { status: 429, headers: { "Retry-After": new Date(target).toUTCString() }, body: RATE_LIMIT_BODY };
    }
    record.arrivedEpochMs = Date.now();
    return openaiOk("42");
  });
  const report = await section({ provider, subtasks: tasks(1) });
  assertInvariants(report, 1, { maxRequests: 2 });
  const retry = server.requests()[1];
  const target = targets.get("section 0");
  assert.ok(retry.arrivedEpochMs >= target - TOLERANCE_MS, `${target - retry.arrivedEpochMs} ms early`);
});

test("retry-after-ms is honoured", async () => {
  firstRateLimited(1, () => ({ "retry-after-ms": "1500" }));
  const report = await section({ provider, subtasks: tasks(1) });
  assertInvariants(report, 1, { maxRequests: 2 });
  assertRetriesWaited(() => 1500);
  assert.equal(report.results[0].attempts[0].error.retryAfterMs, 1500);
});

test("delay above the ceiling fails at once with the delay", async () => {
  firstRateLimited(3, () => ({ "Retry-After": "3600" }));
  const started = performance.now();
  const report = await section({
    provider,
    subtasks: tasks(3),
    retry: { maxRetryAfterMs: 30_000 },
  });
  assert.ok(performance.now() - started < 5000, "the run slept instead of failing");
  assertInvariants(report, 3, { maxRequests: 3 });
  for (const result of report.results) {
    assert.equal(result.status, "failed");
    assert.equal(result.error.code, "RETRY_AFTER_TOO_LONG");
    assert.ok(result.error.requestedMs > 3_500_000, `${result.error.requestedMs}`);
    assert.match(result.error.message, /retry\.maxRetryAfterMs \(30000 ms\)/);
  }
  assert.ok(report.results.some((r) => r.error.status === 429));

  // As a rejection, the error itself carries the code and the delay.
  server.reset();
  firstRateLimited(1, () => ({ "Retry-After": "3600" }));
  const error = await section({
    provider,
    subtasks: tasks(1),
    failure: "fail-fast",
    retry: { maxRetryAfterMs: 30_000 },
  }).then(
    () => assert.fail("the run should reject"),
    (error_) => error_,
  );
  assert.equal(error.code, "RETRY_AFTER_TOO_LONG");
  assert.equal(error.requestedMs, 3_600_000);
  assert.equal(error.status, 429);
  assert.equal(error.report.results[0].status, "failed");
});

test("siblings wait out the same cool-down", async () => {
  firstRateLimited(1, () => ({ "Retry-After": "1" }));
  const report = await section({ provider, subtasks: tasks(4), concurrency: 1 });
  assertInvariants(report, 4, { maxRequests: 5, concurrency: 1 });
  const [limited, ...rest] = server.requests().sort((a, b) => a.seq - b.seq);
  assert.equal(limited.body.messages[0].content, "section 0");
  for (const record of rest) {
    assert.ok(
      record.receivedAt >= limited.respondedAt + 1000 - TOLERANCE_MS,
      `${promptOf(record)} went ${limited.respondedAt + 1000 - record.receivedAt} ms into the cool-down`,
    );
  }
});

test("only retryable failures are retried", async () => {
  const cases = [
    [openaiError(400, "bad param"), 1],
    [openaiError(401, "invalid key", { type: "invalid_api_key" }), 1],
    [openaiError(404, "no such model"), 1],
    [openaiError(422, "unprocessable"), 1],
    [{ status: 408, body: "request timeout" }, 3],
    [openaiError(409, "conflict"), 3],
    [openaiError(500, "server error"), 3],
    [{ status: 503, headers: { "content-type": "text/plain" }, body: "unavailable" }, 3],
    [{ status: 504, body: "" }, 3],
    [anthropicError(529, "overloaded_error", "Overloaded"), 3],
    [{ reset: true }, 3],
  ];
  for (const [action, attempts] of cases) {
    server.reset();
    server.setDefault(action);
    const report = await section({ provider, subtasks: tasks(1), maxRetries: 2, retry: { baseDelayMs: 5 } });
    const label = action.reset ? "connection reset" : `HTTP ${action.status}`;
    assert.equal(report.results[0].status, "failed", label);
    assert.equal(report.results[0].attempts.length, attempts, label);
    assert.equal(server.stats().count, attempts, label);
  }
});

test("overloaded Anthropic answer is retried to success", async () => {
  const anthropicProvider = anthropic({
    baseURL: `${server.url}/v1`,
    model: "claude-scripted",
    apiKey: "sk-ant-test-key-0002",
    maxTokens: 64,
  });
  server.setDefault((record) =>
    record.seq === 1 ? anthropicError(529, "overloaded_error", "Overloaded") : anthropicOk("fine"),
  );
  const report = await section({ provider: anthropicProvider, subtasks: tasks(1), retry: { baseDelayMs: 5 } });
  assert.equal(report.output, "fine");
  assert.equal(report.results[0].attempts[0].error.providerType, "overloaded_error");
  assert.equal(report.results[0].attempts[0].error.status, 529);
});

test("error body holds its slot until read", async () => {
  server.setDefault((record) =>
    promptOf(record) === "section 0"
      ? {
          status: 503,
          headers: { "content-type": "text/html" },
          chunks: ["<html><body>", "busy, try later", "</body></html>"],
          chunkDelayMs: 300,
        }
      : openaiOk("fine"),
  );
  const report = await section({ provider, subtasks: tasks(2), concurrency: 1, maxRetries: 0 });
  assertInvariants(report, 2, { concurrency: 1 });
  const [first, second] = server.requests().sort((a, b) => a.seq - b.seq);
  assert.equal(first.outcome, "completed");
  assert.ok(second.receivedAt >= first.finishedAt, "the next request started before the error body was read");
  assert.equal(report.results[0].error.status, 503);
  assert.match(report.results[0].error.bodyExcerpt, /busy, try later/);
});

test("failed attempt's body holds its slot until cancelled", async () => {
  // A stream that stalls after its first delta: the attempt times out, and only
  // then may the next request start.
  server.setDefault((record) =>
    promptOf(record) === "section 0"
      ? {
          status: 200,
          headers: { "content-type": "application/json" },
          chunks: ['{"id":"x","choices":[{"index":0,'],
          then: "stall",
        }
      : openaiOk("fine"),
  );
  const report = await section({ provider, subtasks: tasks(2), concurrency: 1, maxRetries: 0, timeoutMs: 400 });
  assertInvariants(report, 2, { concurrency: 1 });
  const [first, second] = server.requests().sort((a, b) => a.seq - b.seq);
  assert.equal(first.outcome, "client-closed");
  assert.ok(first.clientClosedAt - first.receivedAt >= 400 - TOLERANCE_MS);
  assert.ok(second.receivedAt >= first.clientClosedAt - 5, "the next request started while the body was open");
  assert.match(report.results[0].error.message, /timed out after 400 ms/);
  assert.equal(report.results[1].status, "ok");
});
