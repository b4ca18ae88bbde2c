// A run whose deadlineMs has passed starts no new attempt. A call still queued for a
// shared limiter at its run's deadline is cancelled without a request, also when the
// permit it waits for is freed before the run's deadline timer fires.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { complete, createLimiter, openai } from "parallel-task-executor";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { startScriptedServer } from "../support/scripted-server.mjs";

let server;
let provider;
let uninstallGuard;

before(async () => {
  uninstallGuard = installLoopbackGuard();
  server = await startScriptedServer();
  provider = openai({ baseURL: `${server.url}/v1`, model: "scripted" });
});

after(async () => {
  await server.close();
  uninstallGuard();
});

test("queued call starts nothing after its deadline", async () => {
  server.setDefault({ stall: "before-headers" });
  await complete({ provider, prompt: "warm-up", deadlineMs: 20 }).catch(() => {});
  await server.waitFor(() => server.stats().inFlight === 0);
  server.reset();
  server.setDefault({ stall: "before-headers" });

  // Run A holds the only permit until its deadline, and run B queues behind it with
  // the same deadline. A busy event loop lets both deadlines pass before either timer
  // fires, so B's deadline has already passed when A's abort frees the permit.
  const limiter = createLimiter(1);
  const first = complete({ provider, limiter, prompt: "run A", deadlineMs: 100 }).catch((error) => error);
  const second = complete({ provider, limiter, prompt: "run B", deadlineMs: 100 }).catch((error) => error);
  await new Promise((resolve) => setImmediate(resolve));
  const busyUntil = performance.now() + 200;
  while (performance.now() < busyUntil) {
    // Keep the event loop busy past both deadlines.
  }
  const [errorA, errorB] = await Promise.all([first, second]);

  assert.equal(errorA.code, "DEADLINE_EXCEEDED");
  assert.equal(errorA.report.attempts.length, 1);
  assert.equal(errorB.code, "DEADLINE_EXCEEDED");
  assert.deepEqual(errorB.report.attempts, [], "run B started an attempt after its deadline");
});
