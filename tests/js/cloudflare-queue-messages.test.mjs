// Queue messages of jobs run through Cloudflare Queues (parallel-task-executor/cloudflare),
// in Miniflare against the scripted server. startJob rejects, before anything is stored
// or queued, a job whose queue message ({job, key}) would be above limits.messageBytes,
// with an INVALID_OPTIONS error whose path is limits.messageBytes and whose message names
// the subtask. A send that keeps failing at flush time is retried from an alarm under the
// object's sendRetry() policy. Then the unsent calls are recorded as failed with the send
// error, so the job finishes instead of staying "running".

import assert from 'node:assert/strict';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {after, before, test} from 'node:test';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';
import {startWorker} from '../support/workerd.mjs';
import {QUEUE_MAX_RETRIES, startCloudflareWorker} from '../runtimes/cloudflare/harness.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LIMITS = {plan: 'paid', queueBatchSize: 10, queueMaxRetries: QUEUE_MAX_RETRIES};

// A worker whose job object fails its first N queue sends when the job is named
// "fail-N-…", and every send when it is named "fail-all-…". It retries a failed send
// 3 times in all, 20 ms apart at first, so the tests finish quickly.
const FAULTY_WORKER = `
import {openai} from ${JSON.stringify(path.join(repoRoot, 'pkg', 'workerd.js'))};
import {JobObject, consumeQueueBatch, startJob} from ${JSON.stringify(path.join(repoRoot, 'pkg', 'cloudflare.js'))};

const provider = openai({baseURL: __API_BASE__, model: 'scripted', apiKey: 'sk-cloudflare-test-key'});
const jobOptions = payload => ({provider, ...payload});

export class Job extends JobObject {
	sends = 0;
	failSends = '0';

	async start(spec) {
		this.failSends = /^fail-(\\d+|all)-/.exec(spec.job)?.[1] ?? '0';
		return super.start(spec);
	}

	jobOptions(payload) {
		return jobOptions(payload);
	}

	sendRetry() {
		return {attempts: 3, baseDelayMs: 20, maxDelayMs: 50};
	}

	jobQueue() {
		return {
			sendBatch: async messages => {
				this.sends++;
				if (this.failSends === 'all' || this.sends <= Number(this.failSends)) {
					throw new Error('injected fault: sendBatch attempt ' + this.sends + ' failed');
				}

				return this.env.TASKS.sendBatch(messages);
			},
		};
	}
}

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const stub = () => env.JOB.get(env.JOB.idFromName(url.searchParams.get('job')));
		if (url.pathname === '/job/start') {
			const {job, kind, payload, limits} = await request.json();
			try {
				return Response.json({ok: true, report: await startJob(env.JOB, job, {kind, payload, limits})});
			} catch (error) {
				return Response.json({ok: false, error: {code: error.code, path: error.path, message: error.message}});
			}
		}

		if (url.pathname === '/job/status') {
			return Response.json(await stub().status());
		}

		if (url.pathname === '/job/result') {
			return Response.json(await stub().result());
		}

		return new Response('not found', {status: 404});
	},

	async queue(batch, env) {
		await consumeQueueBatch(batch, {jobs: env.JOB, options: jobOptions});
	},
};
`;

let server;
let worker;
let faultyWorker;
let faultyDirectory;

before(async () => {
	server = await startScriptedServer();
	server.setDefault(openaiOk('ok'));
	worker = await startCloudflareWorker(server, {batchSize: LIMITS.queueBatchSize});
	faultyDirectory = mkdtempSync(path.join(tmpdir(), 'pte-queue-send-'));
	const entry = path.join(faultyDirectory, 'worker.js');
	writeFileSync(entry, FAULTY_WORKER);
	const started = await startWorker(entry, {
		define: {__API_BASE__: `${server.url}/v1`},
		miniflare: {
			queueProducers: {TASKS: {queueName: 'faulty-tasks'}},
			queueConsumers: {'faulty-tasks': {maxBatchSize: LIMITS.queueBatchSize, maxBatchTimeout: 0, maxRetries: QUEUE_MAX_RETRIES}},
			durableObjects: {JOB: {className: 'Job', useSQLite: true}},
		},
	});
	faultyWorker = {
		...started,
		async call(route, payload) {
			const init = payload === undefined ? {} : {method: 'POST', body: JSON.stringify(payload), headers: {'content-type': 'application/json'}};
			const response = await started.dispatchFetch(route, init);
			const text = await response.text();
			assert.equal(response.status, 200, `${route}: HTTP ${response.status}: ${text}`);
			return JSON.parse(text);
		},
	};
});

after(async () => {
	await faultyWorker?.dispose();
	await worker?.dispose();
	await server?.close();
	if (faultyDirectory) {
		rmSync(faultyDirectory, {recursive: true, force: true});
	}
});

/** Polls the faulty worker's job status until it is done, then resolves with its result. */
async function waitForResult(job) {
	for (let i = 0; i < 300; i++) {
		// eslint-disable-next-line no-await-in-loop
		const status = await faultyWorker.call(`/job/status?job=${job}`);
		if (status.state === 'done') {
			return {status, result: await faultyWorker.call(`/job/result?job=${job}`)};
		}

		// eslint-disable-next-line no-await-in-loop
		await delay(50);
	}

	throw new Error(`job ${job} is not done after 300 polls: ${JSON.stringify(await faultyWorker.call(`/job/status?job=${job}`))}`);
}

test('job with an oversized queue message is rejected', async () => {
	const requestsBefore = server.requests().length;
	const longId = 'x'.repeat(130_000);
	const payload = {subtasks: [{id: longId, prompt: 'Part one.'}, {id: 'short', prompt: 'Part two.'}]};

	const started = await worker.call('/job/start', {job: 'oversized-message', kind: 'section', payload, limits: LIMITS});

	assert.equal(started.ok, false, `the job started: ${JSON.stringify(started.report).slice(0, 300)}`);
	assert.equal(started.error.code, 'INVALID_OPTIONS');
	assert.equal(started.error.path, 'limits.messageBytes');
	assert.equal(started.error.limit, 128_000);
	assert.ok(started.error.needed > 130_000, `needed: ${started.error.needed}`);
	assert.match(started.error.message, /subtask "x{40}"… \(an id of 130,000 characters\)/);
	await delay(300);
	const status = await worker.call('/job/status?job=oversized-message');
	assert.equal(status.state, 'unknown', 'a rejected job stores nothing');
	assert.equal(server.requests().length, requestsBefore);
});

test('job name that makes messages oversized is rejected', async () => {
	const requestsBefore = server.requests().length;
	const job = `vote-${'n'.repeat(128_000)}`;

	const started = await worker.call('/job/start', {job, kind: 'vote', payload: {prompt: 'What is 2+2?', voters: 3, extract: 'number'}, limits: LIMITS});

	assert.equal(started.ok, false, 'the job started');
	assert.equal(started.error.code, 'INVALID_OPTIONS');
	assert.equal(started.error.path, 'limits.messageBytes');
	assert.match(started.error.message, /queue message of sample 2 is [\d,]+ bytes with the job name of 128,005 characters/);
	assert.equal(server.requests().length, requestsBefore);
});

test('message under the size limit starts the job', async () => {
	const id = 'y'.repeat(100_000);
	const payload = {subtasks: [{id, prompt: 'Only part.'}]};

	const started = await worker.call('/job/start', {job: 'large-message', kind: 'section', payload, limits: LIMITS});

	assert.equal(started.ok, true, JSON.stringify(started.error));
	const status = await worker.waitFor('/job/status?job=large-message', value => value.state === 'done', {timeoutMs: 30_000, everyMs: 100});
	assert.equal(status.ok, 1);
});

test('failing sends record the unsent calls as failed', async () => {
	const requestsBefore = server.requests().length;
	const payload = {subtasks: [{id: 'first', prompt: 'Part one.'}, {id: 'second', prompt: 'Part two.'}, {id: 'after', prompt: 'Join {{first}} and {{second}}.'}]};

	const started = await faultyWorker.call('/job/start', {job: 'fail-all-section', kind: 'section', payload, limits: LIMITS});
	assert.equal(started.ok, true, JSON.stringify(started.error));
	const {status, result} = await waitForResult('fail-all-section');

	assert.equal(status.failed, 2);
	assert.equal(status.skipped, 1);
	assert.equal(result.ok, true, JSON.stringify(result.error));
	const byId = Object.fromEntries(result.report.results.map(entry => [entry.id, entry]));
	for (const id of ['first', 'second']) {
		assert.equal(byId[id].status, 'failed');
		assert.match(byId[id].error.message, /queue message for this call could not be sent \(3 failed attempts in a row\): injected fault: sendBatch attempt \d+ failed/);
	}

	assert.equal(byId.after.status, 'skipped');
	assert.equal(server.requests().length, requestsBefore, 'no call was made');
	assert.ok(faultyWorker.logs.some(line => line.includes('job fail-all-section: sending 2 queued messages failed (attempt 1 of 3), retrying in 20 ms')), faultyWorker.logs.join('\n'));
});

test('failing sends end a vote with its samples failed', async () => {
	const payload = {prompt: 'What is 2+2?', voters: 3, extract: 'number'};

	const started = await faultyWorker.call('/job/start', {job: 'fail-all-vote', kind: 'vote', payload, limits: LIMITS});
	assert.equal(started.ok, true, JSON.stringify(started.error));
	const {status, result} = await waitForResult('fail-all-vote');

	assert.equal(status.failed, 3);
	assert.equal(result.ok, false);
	assert.equal(result.error.code, 'ALL_FAILED');
	assert.deepEqual(result.report.samples.map(sample => sample.status), ['failed', 'failed', 'failed']);
});

test('send that recovers within the retries runs the job', async () => {
	const payload = {subtasks: [{id: 'one', prompt: 'Part one.'}, {id: 'two', prompt: 'Then {{one}}.'}]};

	const started = await faultyWorker.call('/job/start', {job: 'fail-2-section', kind: 'section', payload, limits: LIMITS});
	assert.equal(started.ok, true, JSON.stringify(started.error));
	const {status, result} = await waitForResult('fail-2-section');

	assert.equal(status.ok, 2);
	assert.equal(status.failed, 0);
	assert.equal(result.ok, true);
	assert.deepEqual(result.report.results.map(entry => entry.status), ['ok', 'ok']);
	assert.deepEqual(faultyWorker.errorLines(), [], 'the worker logged a runtime error');
});
