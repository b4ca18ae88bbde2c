// Load with faults: 10,000 subtasks at concurrency 100 against the scripted server,
// where about 1% of first attempts fail (HTTP 500, a reset connection, or 429 with
// Retry-After). Every subtask must end "ok" after its retries, appear once in the
// report, and every invariant of tests/support/invariants.mjs must hold.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { openai, section } from "parallel-task-executor";
import { assertInvariants, installProcessGuard, trackResponses } from "../support/invariants.mjs";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { openaiError, openaiOk, startScriptedServer } from "../support/scripted-server.mjs";

const SUBTASKS = 10_000;
const CONCURRENCY = 100;

let server;
let guard;
let uninstallLoopback;

before(async () => {
  uninstallLoopback = installLoopbackGuard();
  server = await startScriptedServer();
  guard = installProcessGuard();
});

after(async () => {
  await guard.assertClean();
  guard.uninstall();
  await server.close();
  uninstallLoopback();
});

/**
 * Returns the fault for the first attempt of subtask k, or null. Faults are spread
 * by k so that each kind occurs about the same number of times, 1% in all.
 */
function faultFor(k) {
  if (k % 100 !== 37) return null;
  const kinds = ["500", "reset", "429-ms", "500", "reset", "429-ms", "429-s"];
  return kinds[Math.floor(k / 100) % kinds.length];
}

test("10,000 subtasks with 1% faults all finish", { timeout: 120_000 }, async () => {
  const attempts = new Map();
  const faults = { "500": 0, reset: 0, "429-ms": 0, "429-s": 0 };
  server.setDefault(
    trackResponses((record) => {
      const prompt = record.body.messages.at(-1).content;
      const k = Number(prompt.slice("part ".length));
      const attempt = (attempts.get(k) ?? 0) + 1;
      attempts.set(k, attempt);
      const fault = attempt === 1 ? faultFor(k) : null;
      if (fault) faults[fault] += 1;
      switch (fault) {
        case "500":
          return openaiError(500, "The server had an error while processing your request.", { type: "server_error" });
        case "reset":
          return { reset: true };
        case "429-ms":
          return openaiError(429, "Rate limit reached.", { type: "rate_limit_error", headers: { "retry-after-ms": "40" } });
        case "429-s":
          return openaiError(429, "Rate limit reached.", { type: "rate_limit_error", headers: { "retry-after": "1" } });
        default:
          return openaiOk(`out ${k}`);
      }
    }),
  );

  const provider = openai({ baseURL: `${server.url}/v1`, model: "scripted" });
  const options = {
    provider,
    subtasks: Array.from({ length: SUBTASKS }, (_, k) => ({ id: `s${k}`, prompt: `part ${k}` })),
    concurrency: CONCURRENCY,
    maxRetries: 2,
    retry: { baseDelayMs: 10, maxDelayMs: 200 },
    merge: "keyed",
  };
  const outcome = await section(options).then(
    (value) => value,
    (error) => error,
  );
  const settledAt = server.now();

  assert.ok(!(outcome instanceof Error), `the run rejected: ${outcome.message}`);
  assert.equal(outcome.results.length, SUBTASKS);
  const notOk = outcome.results.filter((result) => result.status !== "ok");
  assert.deepEqual(notOk.map((result) => `${result.id}: ${result.status} ${result.error?.message ?? ""}`), []);
  for (const [kind, count] of Object.entries(faults)) {
    assert.ok(count >= 10, `${kind} faults injected: ${count}`);
  }
  const faulted = Object.values(faults).reduce((sum, n) => sum + n, 0);
  assert.equal(server.requests().length, SUBTASKS + faulted, "one retry for each fault, none for a success");
  assert.equal(outcome.output.s9999, "out 9999");
  assert.equal(server.stats().maxInFlight <= CONCURRENCY, true);
  await assertInvariants({ outcome, options, server, settledAt });
});
