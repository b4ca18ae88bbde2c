// The batch mode in workerd. A worker submits a vote as a batch and gives up at its
// deadline with the handle. A later request of the same worker resumes from the
// handle, as a Worker that cannot wait for hours would. The worker runs in Miniflare
// and calls the scripted batch server on 127.0.0.1.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";

import { startBatchServer } from "../support/batch-server.mjs";
import { openaiOk } from "../support/scripted-server.mjs";
import { startWorker } from "../support/workerd.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = path.join(root, "target", "batch-workerd");

// POST /vote { deadlineMs?, handle? } runs the vote (or resumes it) and returns
// { ok, result } or { ok: false, code, report }.
const WORKER = `
import {openai, resumeBatch, vote} from 'parallel-task-executor';

const provider = openai({baseURL: __API_BASE__, model: 'gpt-test', apiKey: 'sk-worker-batch-key'});
const options = {provider, prompt: 'What is 6 times 7?', voters: 3, extract: 'number', batch: {pollIntervalMs: 10, maxPollIntervalMs: 40}};

export default {
	async fetch(request) {
		const {deadlineMs, handle} = await request.json();
		try {
			const result = handle ? await resumeBatch(handle, options) : await vote({...options, deadlineMs});
			return Response.json({ok: true, result});
		} catch (error) {
			return Response.json({ok: false, code: error.code, message: error.message, report: error.report ?? null});
		}
	},
};
`;

let server;
let worker;

before(async () => {
  server = await startBatchServer({ apiKey: "sk-worker-batch-key", concurrency: 1 });
  mkdirSync(dir, { recursive: true });
  const entry = path.join(dir, "worker.js");
  writeFileSync(entry, WORKER);
  worker = await startWorker(entry, { define: { __API_BASE__: `${server.url}/v1` } });
});

after(async () => {
  await worker?.dispose();
  await server?.close();
});

beforeEach(async () => {
  await server.settled();
  server.reset();
});

async function post(body) {
  const response = await worker.dispatchFetch("/vote", { method: "POST", body: JSON.stringify(body) });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

test("batch vote completes in workerd", async () => {
  server.upstream.setDefault(openaiOk("42"));
  const body = await post({});
  assert.equal(body.ok, true, body.message);
  assert.equal(body.result.winner, "42");
  assert.equal(body.result.valid, 3);
  assert.equal(body.result.batch.batches[0].status, "completed");
  const checks = server.requests().filter((r) => r.method === "GET");
  assert.ok(checks.length >= 2, "status checks and the output file are GET requests");
  assert.ok(checks.every((r) => r.headers.authorization === "Bearer sk-worker-batch-key"));
  assert.deepEqual(worker.errorLines(), []);
});

test("worker resumes a batch in a later request", async () => {
  server.upstream.setDefault({ ...openaiOk("42"), delayMs: 40 });
  const first = await post({ deadlineMs: 30 });
  assert.equal(first.ok, false);
  assert.equal(first.code, "DEADLINE_EXCEEDED");
  const handle = first.report.batch;
  assert.equal(handle.batches.length, 1);

  const second = await post({ handle });
  assert.equal(second.ok, true, second.message);
  assert.equal(second.result.winner, "42");
  assert.equal(second.result.batch.batches[0].id, handle.batches[0].id);
  assert.equal(server.requests().filter((r) => r.method === "POST" && r.path === "/v1/batches").length, 1, "one batch in all");
  assert.deepEqual(worker.errorLines(), []);
});
