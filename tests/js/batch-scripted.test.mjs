// The batch mode of `section` and `vote` against the scripted batch server, which
// implements the OpenAI Batch API and Anthropic Message Batches in their documented
// formats and runs each request line against a scripted chat server. Poll
// intervals of a few milliseconds keep each test short.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { anthropic, custom, openai, resumeBatch, section, vote, batchLimits } from "parallel-task-executor";
import { startBatchServer } from "../support/batch-server.mjs";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { anthropicOk, openaiError, openaiOk } from "../support/scripted-server.mjs";

const FAST = { pollIntervalMs: 5, maxPollIntervalMs: 20 };

let server;
let uninstallGuard;
let gpt;
let claude;

before(async () => {
  uninstallGuard = installLoopbackGuard();
  server = await startBatchServer({ apiKey: "sk-batch-test-0001" });
  gpt = openai({ baseURL: `${server.url}/v1`, model: "gpt-test", apiKey: "sk-batch-test-0001" });
  claude = anthropic({ baseURL: `${server.url}/v1`, model: "claude-test", apiKey: "sk-batch-test-0001", maxTokens: 32 });
});

after(async () => {
  await server.close();
  uninstallGuard();
});

beforeEach(async () => {
  await server.settled();
  server.reset();
});

/** Returns the last user message of a forwarded chat request. */
function promptOf(record) {
  return record.body.messages.at(-1).content;
}

/** Replies to every line with `answer(customId, prompt)`: a string, or an action. */
function answerWith(answer) {
  server.upstream.setDefault((record) => {
    const reply = answer(record.headers["x-batch-custom-id"], promptOf(record));
    if (typeof reply !== "string") return reply;
    return record.path.endsWith("/messages") ? anthropicOk(reply) : openaiOk(reply);
  });
}

function apiCalls(method, pattern) {
  return server.requests().filter((r) => r.method === method && pattern.test(r.path));
}

function jsonlLines(text) {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

test("vote sends an OpenAI batch file in the documented shape", async () => {
  answerWith(() => "42");
  const report = await vote({ provider: gpt, prompt: "What is 6 times 7?", voters: 3, extract: "number", batch: FAST });
  assert.equal(report.winner, "42");

  const uploads = apiCalls("POST", /^\/v1\/files$/);
  assert.equal(uploads.length, 1);
  assert.equal(uploads[0].multipart.purpose, "batch");
  assert.equal(uploads[0].multipart.file.name, "batch.jsonl");
  assert.equal(uploads[0].headers.authorization, "Bearer sk-batch-test-0001");
  const lines = jsonlLines(uploads[0].multipart.file.text);
  assert.equal(lines.length, 3);
  for (const [i, line] of lines.entries()) {
    assert.deepEqual(Object.keys(line), ["custom_id", "method", "url", "body"]);
    assert.equal(line.custom_id, `sample-${i}`);
    assert.equal(line.method, "POST");
    assert.equal(line.url, "/v1/chat/completions");
    assert.equal(line.body.model, "gpt-test");
    assert.deepEqual(line.body.messages, [{ role: "user", content: "What is 6 times 7?" }]);
  }

  const creates = apiCalls("POST", /^\/v1\/batches$/);
  assert.equal(creates.length, 1);
  assert.deepEqual(creates[0].body, { input_file_id: server.batches()[0].object.input_file_id, endpoint: "/v1/chat/completions", completion_window: "24h" });
  assert.ok(apiCalls("GET", /^\/v1\/batches\/[^/]+$/).length >= 1);
  assert.equal(apiCalls("GET", /\/content$/).length, 1, "one output file, no error file");
});

test("anthropic section sends params with max_tokens and runs phases in order", async () => {
  answerWith((_id, prompt) => `done(${prompt})`);
  const report = await section({
    provider: claude,
    subtasks: [
      { id: "schema", prompt: "Design the table." },
      { id: "ui", prompt: "Sketch the page." },
      { id: "api", prompt: "Routes for {{schema}}." },
    ],
    merge: "keyed",
    batch: FAST,
  });
  assert.deepEqual(report.output, {
    schema: "done(Design the table.)",
    ui: "done(Sketch the page.)",
    api: "done(Routes for done(Design the table.).)",
  });

  const creates = apiCalls("POST", /^\/v1\/messages\/batches$/);
  assert.equal(creates.length, 2, "one batch per phase");
  assert.equal(creates[0].headers["x-api-key"], "sk-batch-test-0001");
  assert.equal(creates[0].headers["anthropic-version"], "2023-06-01");
  assert.deepEqual(
    creates[0].body.requests.map((r) => r.custom_id),
    ["subtask-schema", "subtask-ui"],
  );
  for (const request of creates[0].body.requests) {
    assert.deepEqual(Object.keys(request), ["custom_id", "params"]);
    assert.equal(request.params.max_tokens, 32);
    assert.equal(request.params.model, "claude-test");
  }
  const firstResults = apiCalls("GET", /\/results$/)[0];
  assert.ok(creates[1].seq > firstResults.seq, "the second phase is submitted after the first phase's results");
  assert.deepEqual(report.batch.batches.map((b) => b.phase), [0, 1]);
  assert.deepEqual(report.results.map((r) => r.status), ["ok", "ok", "ok"]);
});

test("results out of order, errored and as string bodies match by custom_id", async () => {
  server.configure({ order: "reverse", bodyAsString: true, concurrency: 1 });
  answerWith((id) => {
    if (id === "sample-1") return openaiError(400, "this request is invalid");
    if (id === "sample-4") return openaiError(503, "overloaded");
    return id === "sample-2" ? "7" : "42";
  });
  const report = await vote({ provider: gpt, prompt: "q", voters: 5, extract: "number", batch: FAST });
  assert.deepEqual(
    report.samples.map((s) => s.status),
    ["ok", "failed", "ok", "ok", "failed"],
  );
  assert.equal(report.samples[2].answer, "7");
  assert.equal(report.samples[1].error.status, 400);
  assert.equal(report.samples[1].error.retryable, false);
  assert.equal(report.samples[4].error.status, 503);
  assert.equal(report.samples[4].error.retryable, true);
  assert.equal(report.winner, "42");
  assert.equal(report.failed, 2);
  assert.deepEqual(report.usage, { inputTokens: 27, outputTokens: 3, costUsd: null });
  assert.equal(apiCalls("GET", /\/content$/).length, 2, "the output file and the error file");
});

test("batch report has the shape of an in-process report", async () => {
  answerWith(() => "42");
  const direct = openai({ baseURL: `${server.upstream.url}/v1`, model: "gpt-test" });
  const options = { prompt: "q", voters: 3, extract: "number" };
  const inProcess = await vote({ ...options, provider: direct });
  const batched = await vote({ ...options, provider: gpt, batch: FAST });
  for (const key of Object.keys(inProcess)) {
    if (key === "roundDetails") continue;
    assert.ok(key in batched, `the batch report lacks ${key}`);
  }
  assert.deepEqual(Object.keys(batched.samples[0]).sort(), Object.keys(inProcess.samples[0]).sort());
  assert.equal(batched.winner, inProcess.winner);
  // In process the vote stops once two samples agree; a batch runs all three.
  assert.deepEqual(batched.counts, { 42: 3 });
  assert.equal(typeof batched.metrics.wallMs, "number");
  assert.equal(batched.metrics.batches, 1);
});

test("events carry the handle, the counts and the end", async () => {
  answerWith(() => "42");
  const events = [];
  await vote({ provider: claude, prompt: "q", voters: 2, extract: "number", batch: FAST, onEvent: (e) => events.push(e) });
  const types = events.map((e) => e.type);
  assert.equal(types[0], "run-start");
  assert.equal(types.at(-1), "run-end");
  const submitted = events.filter((e) => e.type === "batch-submitted");
  assert.equal(submitted.length, 1);
  assert.equal(submitted[0].provider, "anthropic");
  assert.deepEqual(submitted[0].handle.batches[0].customIds, ["sample-0", "sample-1"]);
  assert.equal(submitted[0].handle.kind, "vote");
  const progress = events.filter((e) => e.type === "batch-progress");
  assert.ok(progress.length >= 1);
  assert.ok(progress.every((e) => e.counts && typeof e.counts.processing === "number"));
  const ended = events.filter((e) => e.type === "batch-ended");
  assert.equal(ended.length, 1);
  assert.deepEqual(ended[0].counts, { processing: 0, succeeded: 2, errored: 0, canceled: 0, expired: 0 });
  assert.ok(types.indexOf("batch-submitted") < types.indexOf("batch-ended"));
});

for (const [name, provider, cancelPath] of [
  ["openai", () => gpt, /^\/v1\/batches\/[^/]+\/cancel$/],
  ["anthropic", () => claude, /^\/v1\/messages\/batches\/[^/]+\/cancel$/],
]) {
  test(`abort midway cancels the ${name} batch and keeps partial results`, async () => {
    server.configure({ concurrency: 1 });
    server.upstream.setDefault((record) => ({ ...(record.path.endsWith("/messages") ? anthropicOk("42") : openaiOk("42")), delayMs: 60 }));
    const controller = new AbortController();
    const done = vote({ provider: provider(), prompt: "q", voters: 6, extract: "number", batch: FAST, signal: controller.signal });
    await server.upstream.waitFor(() => server.upstream.requests().filter((r) => r.outcome === "completed").length >= 2);
    controller.abort(new Error("stop now"));
    const error = await done.then(
      () => assert.fail("the run should reject"),
      (e) => e,
    );
    assert.equal(error.code, "ABORTED");
    assert.equal(error.name, "AbortError");
    assert.equal(apiCalls("POST", cancelPath).length, 1, "the batch is cancelled at the provider");
    const statuses = error.report.samples.map((s) => s.status);
    const ok = statuses.filter((s) => s === "ok").length;
    assert.ok(ok >= 2, `finished samples are kept: ${statuses}`);
    assert.ok(ok < 6, `not every sample ran: ${statuses}`);
    assert.ok(statuses.every((s) => s === "ok" || s === "cancelled"), statuses.join());
    assert.equal(error.report.samples.length, 6, "every sample is accounted for");
    assert.equal(error.report.winner, "42");
    assert.ok(["cancelled", "ended"].includes(error.report.batch.batches[0].status));
  });
}

test("failed validation fails every request with the provider's errors", async () => {
  server.configure({ rejectLine: (line) => (line.custom_id === "sample-1" ? { code: "invalid_request", message: "this line is not allowed", param: "body" } : null) });
  answerWith(() => "42");
  const error = await vote({ provider: gpt, prompt: "q", voters: 3, extract: "number", batch: FAST }).then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.equal(error.code, "ALL_FAILED");
  const samples = error.report.samples;
  assert.ok(samples.every((s) => s.status === "failed"));
  assert.match(samples[1].error.message, /because of this request: line 2: invalid_request: this line is not allowed/);
  assert.match(samples[0].error.message, /failed validation, so this request never ran/);
  assert.equal(error.report.batch.batches[0].status, "failed");
  assert.equal(server.upstream.requests().length, 0, "no line ran");
});

test("expired batch keeps the lines that finished", async () => {
  server.configure({ expireAfter: 2, concurrency: 1 });
  answerWith(() => "42");
  const report = await vote({ provider: gpt, prompt: "q", voters: 4, extract: "number", batch: FAST });
  assert.deepEqual(
    report.samples.map((s) => s.status),
    ["ok", "ok", "failed", "failed"],
  );
  assert.equal(report.samples[3].error.providerType, "batch_expired");
  assert.equal(report.batch.batches[0].status, "expired");
  assert.equal(report.winner, "42");
});

test("anthropic expired and canceled results are kept apart", async () => {
  server.configure({ expireAfter: 1, concurrency: 1 });
  answerWith(() => "42");
  const report = await vote({ provider: claude, prompt: "q", voters: 3, extract: "number", batch: FAST });
  assert.deepEqual(
    report.samples.map((s) => s.status),
    ["ok", "failed", "failed"],
  );
  assert.equal(report.samples[1].error.providerType, "expired");
});

test("plan above a lowered limit is split, or rejected without split", async () => {
  server.configure({ limits: { openai: { maxRequests: 2, maxBytes: 200_000_000 }, anthropic: { maxRequests: 2, maxBytes: 256_000_000 } } });
  answerWith((id) => id);
  const report = await vote({ provider: gpt, prompt: "q", voters: 5, extract: "text", batch: { ...FAST, maxRequestsPerBatch: 2 } });
  assert.deepEqual(
    server.batches().map((b) => b.lines.length),
    [2, 2, 1],
  );
  assert.deepEqual(
    report.samples.map((s) => s.text),
    ["sample-0", "sample-1", "sample-2", "sample-3", "sample-4"],
  );
  assert.equal(report.batch.batches.length, 3);

  server.reset();
  const error = await vote({ provider: gpt, prompt: "q", voters: 5, extract: "text", batch: { ...FAST, maxRequestsPerBatch: 2, split: false } }).then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.ok(error instanceof RangeError);
  assert.equal(error.code, "INVALID_OPTIONS");
  assert.match(error.message, /^batch\.split: .*5 requests, above the limit of 2 requests per OpenAI batch/);
  assert.equal(server.requests().length, 0, "rejected before any request");
});

test("plan above a lowered byte limit is split by size", async () => {
  answerWith(() => "ok");
  const prompt = "Describe the part in detail. ".repeat(20);
  const report = await section({
    provider: claude,
    subtasks: Array.from({ length: 6 }, (_, i) => ({ id: `part${i}`, prompt: `${prompt} (${i})` })),
    batch: { ...FAST, maxBytesPerBatch: 2048 },
  });
  const creates = apiCalls("POST", /^\/v1\/messages\/batches$/);
  assert.ok(creates.length >= 2, `${creates.length} batches`);
  for (const create of creates) assert.ok(Buffer.byteLength(create.bodyText) <= 2048, `${Buffer.byteLength(create.bodyText)} bytes`);
  assert.equal(report.results.length, 6);
  assert.ok(report.results.every((r) => r.status === "ok"));
});

test("resumeBatch finishes a run from its handle in a fresh call", async () => {
  server.configure({ concurrency: 1 });
  server.upstream.setDefault(() => ({ ...openaiOk("42"), delayMs: 40 }));
  const options = { provider: gpt, prompt: "q", voters: 4, extract: "number", batch: FAST };
  const error = await vote({ ...options, deadlineMs: 60 }).then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.equal(error.code, "DEADLINE_EXCEEDED");
  assert.match(error.message, /resumeBatch/);
  assert.equal(apiCalls("POST", /\/cancel$/).length, 0, "the deadline leaves the batch running");
  assert.ok(error.report.samples.every((s) => s.status === "cancelled" || s.status === "ok"));
  const handle = JSON.parse(JSON.stringify(error.report.batch));

  const uploadsBefore = apiCalls("POST", /^\/v1\/files$/).length;
  const report = await resumeBatch(handle, options);
  assert.equal(apiCalls("POST", /^\/v1\/files$/).length, uploadsBefore, "resuming submits nothing new");
  assert.equal(report.winner, "42");
  assert.equal(report.valid, 4);
  assert.equal(report.batch.batches[0].id, handle.batches[0].id);
});

test("resumeBatch accepts the handle of a batch-submitted event", async () => {
  server.configure({ concurrency: 1 });
  server.upstream.setDefault((record) => ({ ...anthropicOk(`out:${promptOf(record)}`), delayMs: 40 }));
  const options = { provider: claude, subtasks: [{ id: "a", prompt: "A" }, { id: "b", prompt: "B {{a}}" }], batch: FAST };
  let handle;
  // The first call stops waiting at its deadline, as a closed tab would; only the
  // event's handle is kept.
  await assert.rejects(
    section({ ...options, deadlineMs: 20, onEvent: (e) => { if (e.type === "batch-submitted") handle = e.handle; } }),
    { code: "DEADLINE_EXCEEDED" },
  );
  assert.equal(handle.kind, "section");
  assert.deepEqual(handle.batches.map((b) => b.customIds), [["subtask-a"]]);

  const createsBefore = apiCalls("POST", /^\/v1\/messages\/batches$/).length;
  const report = await resumeBatch(handle, options);
  assert.equal(report.output, "out:A\n\nout:B out:A");
  assert.deepEqual(report.results.map((r) => r.status), ["ok", "ok"]);
  assert.equal(report.batch.batches[0].id, handle.batches[0].id);
  const creates = apiCalls("POST", /^\/v1\/messages\/batches$/).slice(createsBefore);
  assert.deepEqual(creates.map((c) => c.body.requests.map((r) => r.custom_id)), [["subtask-b"]], "only the second phase is submitted");
});

test("unknown and duplicate result lines are reported, not counted", async () => {
  server.configure({
    extraLines: [
      JSON.stringify({ custom_id: "sample-7", result: { type: "succeeded", message: { type: "message", content: [{ type: "text", text: "9" }] } } }),
      JSON.stringify({ custom_id: "sample-0", result: { type: "succeeded", message: { type: "message", content: [{ type: "text", text: "9" }] } } }),
      "not json",
    ],
  });
  answerWith(() => "42");
  const report = await vote({ provider: claude, prompt: "q", voters: 2, extract: "number", batch: FAST });
  assert.deepEqual(report.counts, { 42: 2 });
  assert.deepEqual(
    report.batch.unmatched.map((u) => [u.reason, u.customId]),
    [
      ["unknown-custom-id", "sample-7"],
      ["duplicate-custom-id", "sample-0"],
      ["unreadable-line", null],
    ],
  );
  assert.ok(report.warnings.some((w) => w.code === "batch-unmatched-results"));
});

test("bad batch options are rejected with their path", async () => {
  const base = { provider: gpt, prompt: "q", voters: 3, extract: "number" };
  await assert.rejects(vote({ ...base, batch: "yes" }), { code: "INVALID_OPTIONS", message: /^batch: expected true, false or/ });
  await assert.rejects(vote({ ...base, batch: { pollInterval: 5 } }), { message: /batch\.pollInterval: unknown option; did you mean `pollIntervalMs`\?/ });
  await assert.rejects(vote({ ...base, batch: { pollIntervalMs: 50, maxPollIntervalMs: 10 } }), { message: /^batch\.maxPollIntervalMs/ });
  await assert.rejects(vote({ ...base, batch: { metadata: { a: 1 } } }), { message: /^batch\.metadata\.a/ });
  await assert.rejects(vote({ ...base, rule: { aheadBy: 2 }, batch: true }), { message: /^rule: .*cannot stop early/ });
  const fn = custom(async () => ({ text: "1" }), { name: "mine" });
  await assert.rejects(section({ provider: fn, subtasks: [{ id: "a", prompt: "A" }], batch: true }), { message: /^subtasks\[0\]\.provider: provider "mine" is a custom function/ });
  await assert.rejects(resumeBatch("batch_1", base), { code: "INVALID_OPTIONS", message: /report\.batch/ });
  await assert.rejects(resumeBatch({ kind: "vote", batches: [{ provider: "openai", id: "b", customIds: ["sample-9"] }] }, base), {
    message: /^batch\.resume\.batches\[0\]\.customIds\[0\]: "sample-9" names no sample/,
  });
  assert.equal(server.requests().length, 0, "nothing reached the server");
});

test("metadata goes with an OpenAI batch", async () => {
  answerWith(() => "42");
  await vote({ provider: gpt, prompt: "q", voters: 1, extract: "number", batch: { ...FAST, metadata: { job: "nightly-eval" } } });
  assert.deepEqual(apiCalls("POST", /^\/v1\/batches$/)[0].body.metadata, { job: "nightly-eval" });
  assert.deepEqual(server.batches()[0].object.metadata, { job: "nightly-eval" });
});

test("a wrong key fails every request with the 401", async () => {
  const wrong = openai({ baseURL: `${server.url}/v1`, model: "gpt-test", apiKey: "sk-wrong-key-9999" });
  const error = await vote({ provider: wrong, prompt: "q", voters: 2, extract: "number", batch: FAST }).then(
    () => assert.fail("the run should reject"),
    (e) => e,
  );
  assert.equal(error.code, "ALL_FAILED");
  assert.equal(error.report.samples[0].error.status, 401);
  assert.ok(!JSON.stringify(error.report).includes("sk-wrong-key-9999"), "the key never shows");
  assert.ok(error.report.warnings.some((w) => w.code === "batch-submit-failed"));
});

test("batchLimits gives the documented provider limits", () => {
  assert.deepEqual(batchLimits(), {
    openai: { maxRequests: 50_000, maxBytes: 200_000_000 },
    anthropic: { maxRequests: 100_000, maxBytes: 256_000_000 },
  });
});
