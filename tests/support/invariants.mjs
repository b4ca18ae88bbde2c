// Checks that hold for every run against the scripted server, whatever faults it
// injected. Use them in fault tests:
//
//   const guard = installProcessGuard();            // before the test
//   server.reset();                                 // maxInFlight counts from here
//   server.setDefault(trackResponses((record, ctx) => action));
//   const outcome = await run.then((r) => r, (e) => e);
//   const settledAt = server.now();
//   await assertInvariants({ outcome, options, server, settledAt });
//   guard.assertClean();                            // after the test; also uninstall()
//
// checkInvariants returns the list of broken invariants (an empty list when all
// hold); assertInvariants fails the test with that list. The checks:
// - every subtask (section) or vote sample appears exactly once with a valid status,
//   in the result or in a rejection's `report`;
// - the server saw no more requests than `maxRequests` (when set), and never more in
//   flight than the concurrency (`options.concurrency`, else `options.limiter`'s),
//   read from `server.stats().maxInFlight`, so reset the server before the run;
// - every request of the run has finished or been aborted within `closeWithinMs`
//   (200 ms) of the run settling, and each aborted request's connection closed by
//   then (`clientClosedAt`). Idle keep-alive sockets are not requests, so they do
//   not count;
// - no retry of a call arrived earlier than the Retry-After (or retry-after-ms) of the
//   response before it, for responses made through trackResponses.
// installProcessGuard records unhandled rejections and uncaught exceptions.

import assert from "node:assert/strict";

const SUBTASK_STATUSES = new Set(["ok", "failed", "cancelled", "skipped"]);
const SAMPLE_STATUSES = new Set(["ok", "abstained", "red-flagged", "failed", "cancelled"]);

/** Responses chosen by responders wrapped with trackResponses, keyed by record. */
const responses = new WeakMap();

/**
 * Wraps a responder (an action, an array of actions or a function, as the scripted
 * server takes them) so the invariants can see which status and Retry-After each
 * request got.
 */
export function trackResponses(respond) {
  return async (record, ctx) => {
    let action;
    if (typeof respond === "function") {
      action = await respond(record, ctx);
    } else if (Array.isArray(respond)) {
      action = respond[Math.min(ctx.index, respond.length - 1)];
    } else {
      action = respond;
    }
    responses.set(record, action);
    return action;
  };
}

/** Returns the action a tracked responder chose for a record, or undefined. */
export function responseOf(record) {
  return responses.get(record);
}

/** Returns the delay in ms a tracked response requested before a retry, or null. */
export function retryAfterMsOf(record) {
  const action = responses.get(record);
  if (!action?.headers) return null;
  const headers = Object.fromEntries(Object.entries(action.headers).map(([name, value]) => [name.toLowerCase(), String(value)]));
  if (headers["retry-after-ms"] !== undefined) {
    const ms = Number(headers["retry-after-ms"]);
    return Number.isFinite(ms) ? ms : null;
  }
  if (headers["retry-after"] !== undefined) {
    const seconds = Number(headers["retry-after"]);
    if (Number.isFinite(seconds)) return seconds * 1000;
    const date = Date.parse(headers["retry-after"]);
    return Number.isFinite(date) ? Math.max(0, date - Date.now()) : null;
  }
  return null;
}

/**
 * Records unhandled rejections and uncaught exceptions from now on. assertClean()
 * fails if any happened; uninstall() removes the listeners.
 */
export function installProcessGuard() {
  const errors = [];
  const onRejection = (reason) => errors.push({ type: "unhandledRejection", reason });
  const onException = (error) => errors.push({ type: "uncaughtException", reason: error });
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return {
    errors,
    async assertClean({ settleMs = 50 } = {}) {
      // A rejection becomes "unhandled" only after the microtask queue drains.
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      const described = errors.map(({ type, reason }) => `${type}: ${reason?.stack ?? reason}`);
      assert.deepEqual(described, [], "no unhandled rejection and no uncaught exception");
    },
    uninstall() {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    },
  };
}

function kindOf(options) {
  if (Array.isArray(options.subtasks)) return "section";
  if (options.voters !== undefined || options.rule !== undefined || options.extract !== undefined) return "vote";
  return "complete";
}

/** Returns the report of a result or of a rejection, or null when a rejection has none. */
function reportOf(outcome) {
  if (outcome instanceof Error) return outcome.report ?? null;
  return outcome;
}

function checkSubtasks(report, options, problems) {
  if (!report || !Array.isArray(report.results)) {
    problems.push("the section has no results list (in the result or in the rejection's report)");
    return;
  }
  const expected = options.subtasks.map((subtask) => subtask.id);
  const seen = report.results.map((result) => result.id);
  for (const id of expected) {
    const count = seen.filter((other) => other === id).length;
    if (count !== 1) problems.push(`subtask ${id} appears ${count} times in the results`);
  }
  for (const id of seen) {
    if (!expected.includes(id)) problems.push(`the results list subtask ${id}, which was not given`);
  }
  for (const result of report.results) {
    if (!SUBTASK_STATUSES.has(result.status)) problems.push(`subtask ${result.id} has the invalid status ${result.status}`);
  }
}

function checkSamples(report, options, problems) {
  if (!report || !Array.isArray(report.samples)) {
    problems.push("the vote has no samples list (in the result or in the rejection's report)");
    return;
  }
  const indexes = report.samples.map((sample) => sample.index);
  indexes.forEach((index, position) => {
    if (index !== position) problems.push(`sample at position ${position} has index ${index}; indexes must run 0..n-1 once each`);
  });
  for (const sample of report.samples) {
    if (!SAMPLE_STATUSES.has(sample.status)) problems.push(`sample ${sample.index} has the invalid status ${sample.status}`);
  }
  if (Number.isInteger(options.maxSamples) && report.samples.length > options.maxSamples) {
    problems.push(`${report.samples.length} samples exceed maxSamples ${options.maxSamples}`);
  }
}

function concurrencyOf(options) {
  if (Number.isInteger(options.concurrency)) return options.concurrency;
  if (options.limiter && Number.isInteger(options.limiter.concurrency)) return options.limiter.concurrency;
  return null;
}

function checkRetryAfter(records, keyOf, problems) {
  const byKey = new Map();
  for (const record of records) {
    const key = keyOf(record);
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(record);
  }
  for (const list of byKey.values()) {
    for (let i = 0; i + 1 < list.length; i += 1) {
      const requested = retryAfterMsOf(list[i]);
      if (requested === null || list[i].respondedAt === null) continue;
      const waited = list[i + 1].receivedAt - list[i].respondedAt;
      // 1 ms covers the rounding of the two timestamps; a client clock never runs early.
      if (waited < requested - 1) {
        problems.push(`request ${list[i + 1].seq} retried ${waited.toFixed(1)} ms after request ${list[i].seq}, which requested ${requested} ms`);
      }
    }
  }
}

/**
 * Waits until every request of the run is closed or `closeWithinMs` after
 * `settledAt` passed, then reports requests still open and connections closed late.
 */
async function checkClosed(server, records, settledAt, closeWithinMs, problems) {
  const deadline = settledAt + closeWithinMs;
  while (server.now() < deadline && records.some((record) => record.closedAt === null)) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  for (const record of records) {
    if (record.closedAt === null) {
      problems.push(`request ${record.seq} was still open ${closeWithinMs} ms after the run settled (outcome ${record.outcome})`);
    } else if (record.clientClosedAt !== null && record.clientClosedAt > deadline) {
      problems.push(`request ${record.seq} was aborted ${(record.clientClosedAt - settledAt).toFixed(1)} ms after the run settled`);
    }
  }
}

/**
 * Returns the invariants the run broke, as messages; an empty list when all hold.
 *
 * outcome: the run's result, or the error it rejected with.
 * options: the options the run was called with.
 * server: the scripted server, reset before the run.
 * settledAt: server.now() taken right after the run settled.
 * since: only records with a larger seq belong to the run (default 0).
 * key: groups the requests of one call for the Retry-After check (default: the
 *   request body, which retries repeat exactly).
 * concurrency: the in-flight limit the server must not exceed (default: the run's
 *   own; pass the total when several runs share the server at once).
 */
export async function checkInvariants({
  outcome,
  options,
  server,
  settledAt,
  since = 0,
  key = (record) => record.bodyText,
  closeWithinMs = 200,
  concurrency = concurrencyOf(options),
}) {
  const problems = [];
  const kind = kindOf(options);
  const report = reportOf(outcome);
  if (kind === "section") checkSubtasks(report, options, problems);
  if (kind === "vote") checkSamples(report, options, problems);

  const records = server.requests().filter((record) => record.seq > since);
  if (Number.isInteger(options.maxRequests) && records.length > options.maxRequests) {
    problems.push(`the server saw ${records.length} requests, more than maxRequests ${options.maxRequests}`);
  }
  const { maxInFlight } = server.stats();
  if (concurrency !== null && maxInFlight > concurrency) {
    problems.push(`the server saw ${maxInFlight} requests in flight, more than the concurrency ${concurrency}`);
  }
  checkRetryAfter(records, key, problems);
  await checkClosed(server, records, settledAt, closeWithinMs, problems);
  return problems;
}

/** Fails the test with every broken invariant. Takes the arguments of checkInvariants. */
export async function assertInvariants(args) {
  const problems = await checkInvariants(args);
  assert.deepEqual(problems, [], `broken invariants:\n${problems.join("\n")}`);
}
