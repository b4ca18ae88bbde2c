// Sectioning and voting through Cloudflare Queues with a Durable Object per job
// (parallel-task-executor/cloudflare), in Miniflare against the scripted server. Every
// subtask is recorded exactly once while messages are redelivered and calls fail. The
// object releases dependents, a settled vote stops its samples, and the consumer keeps
// at most 6 calls open. Miniflare delivers one batch at a time, so the server's count
// of requests in flight is the count of one consumer invocation.
import assert from 'node:assert/strict';
import {setTimeout as delay} from 'node:timers/promises';
import {after, before, beforeEach, test} from 'node:test';
import {openaiError, openaiOk, startScriptedServer} from '../support/scripted-server.mjs';
import {QUEUE_MAX_RETRIES, startCloudflareWorker} from '../runtimes/cloudflare/harness.mjs';

const LIMITS = {plan: 'paid', queueBatchSize: 50, queueMaxRetries: QUEUE_MAX_RETRIES};

let server;
let worker;
let jobs = 0;

before(async () => {
	server = await startScriptedServer();
	worker = await startCloudflareWorker(server, {batchSize: LIMITS.queueBatchSize});
});

after(async () => {
	await worker?.dispose();
	await server?.close();
});

beforeEach(async () => {
	server.reset();
	await worker.call('/faults', {});
});

function tagOf(record) {
	const text = record.body?.messages?.at(-1)?.content ?? '';
	return /\[([\w-]+)\]$/.exec(text)?.[1] ?? null;
}

/** Scripts the reply to each tag as `out-<tag>`. `faults(tag, n)` may return another action for the tag's nth request (1-based). */
function answerByTag(faults = () => undefined, {delayMs = 2} = {}) {
	const seen = new Map();
	server.setDefault(record => {
		const tag = tagOf(record);
		const n = (seen.get(tag) ?? 0) + 1;
		seen.set(tag, n);
		return faults(tag, n) ?? openaiOk(`out-${tag}`, {delayMs});
	});
}

function countByTag() {
	const counts = new Map();
	for (const record of server.requests()) {
		const tag = tagOf(record);
		counts.set(tag, (counts.get(tag) ?? 0) + 1);
	}

	return counts;
}

/** Starts a job and resolves with its final status and result. */
async function runJob(kind, payload, {limits = LIMITS, timeoutMs = 60_000} = {}) {
	const job = `${kind}-job-${++jobs}`;
	const started = await worker.call('/job/start', {job, kind, payload, limits});
	assert.equal(started.ok, true, JSON.stringify(started.error));
	const status = await worker.waitFor(`/job/status?job=${job}`, value => value.state === 'done', {timeoutMs, everyMs: 100});
	const result = await worker.call(`/job/result?job=${job}`);
	return {job, started: started.report, status, result};
}

const SIZE = 2000;
const FAILING = new Set([18, 777, 1500, 1998]);
const FLAKY = index => index % 97 === 3;

/** Builds the large job: every 20th subtask builds on the one before it (`s19` on `s18`, and so on). */
function bigJob() {
	const subtasks = Array.from({length: SIZE}, (_, index) => (index % 20 === 19
		? {id: `s${index}`, prompt: `Extend {{s${index - 1}}}. [s${index}]`}
		: {id: `s${index}`, prompt: `Part ${index}. [s${index}]`}));
	return {subtasks, maxRetries: 2, retry: {baseDelayMs: 10}};
}

test('2,000-subtask job records each subtask once', {timeout: 120_000}, async () => {
	answerByTag((tag, n) => {
		const index = Number(tag.slice(1));
		if (FAILING.has(index)) {
			return openaiError(400, 'malformed request');
		}

		return FLAKY(index) && n === 1 ? openaiError(500, 'internal error') : undefined;
	});
	await worker.call('/faults', {loseRecordEvery: 37, recordTwiceEvery: 101, throwOnBatches: [3, 10]});

	const {status, result} = await runJob('section', bigJob(), {timeoutMs: 100_000});
	const consumer = await worker.call('/consumer');

	assert.equal(result.ok, true, JSON.stringify(result.error));
	const {results} = result.report;
	const ids = results.map(entry => entry.id);
	assert.equal(ids.length, SIZE, 'one result per subtask');
	assert.equal(new Set(ids).size, SIZE, 'no subtask counted twice');
	assert.deepEqual(ids, bigJob().subtasks.map(subtask => subtask.id), 'none lost');

	// Failures are kept; dependents of a failure are skipped, never run.
	const byStatus = {};
	for (const entry of results) {
		(byStatus[entry.status] ??= []).push(entry);
	}

	assert.deepEqual(byStatus.failed.map(entry => entry.id), ['s18', 's777', 's1500', 's1998']);
	assert.deepEqual(byStatus.skipped.map(entry => entry.id), ['s19', 's1999']);
	assert.equal(byStatus.ok.length, SIZE - 6);
	assert.equal(byStatus.cancelled, undefined);
	assert.equal(result.report.output.split('\n\n').length, SIZE - 6);

	// One call per subtask, two for the ones that failed once, none for skipped ones.
	const counts = countByTag();
	for (let index = 0; index < SIZE; index++) {
		const expected = index === 19 || index === 1999 ? undefined : (FLAKY(index) && !FAILING.has(index) ? 2 : 1);
		assert.equal(counts.get(`s${index}`), expected, `s${index} was called ${counts.get(`s${index}`)} times`);
	}

	// The faults happened, and no redelivery counted twice.
	assert.equal(consumer.thrownBatches, 2);
	assert.ok(consumer.lostRecords >= 50, `${consumer.lostRecords} record responses were lost`);
	assert.ok(consumer.doubledRecords >= 19, `${consumer.doubledRecords} records were sent twice`);
	assert.equal(status.duplicates, consumer.doubledRecords, 'each doubled record was refused once');
	assert.ok(status.redelivered >= consumer.lostRecords, `${status.redelivered} redelivered messages were acknowledged without a call`);
	assert.equal(status.recorded, SIZE - 2);
	assert.equal(status.skipped, 2);
	assert.equal(status.pending, 0);

	// At most 6 calls open in one consumer invocation, and more than one.
	assert.ok(server.stats().maxInFlight <= 6, `${server.stats().maxInFlight} requests in flight at once`);
	assert.ok(server.stats().maxInFlight >= 2, `only ${server.stats().maxInFlight} request in flight at once`);
	assert.ok(consumer.sizes.every(size => size <= LIMITS.queueBatchSize));
});

test('object releases a subtask after its dependencies', async () => {
	answerByTag(undefined, {delayMs: 20});
	const payload = {
		subtasks: [
			{id: 'schema', prompt: 'Design the table. [schema]'},
			{id: 'style', prompt: 'Pick the colours. [style]'},
			{id: 'api', prompt: 'Write routes for {{schema}}. [api]'},
			{id: 'ui', prompt: 'Sketch {{style}} over {{api}}. [ui]'},
		],
	};

	const {result} = await runJob('section', payload);

	assert.equal(result.ok, true, JSON.stringify(result.error));
	assert.equal(result.report.output, 'out-schema\n\nout-style\n\nout-api\n\nout-ui');
	const find = tag => server.requests().find(record => tagOf(record) === tag);
	assert.ok(find('api').receivedAt >= find('schema').finishedAt);
	assert.ok(find('ui').receivedAt >= find('api').finishedAt);
	assert.ok(find('ui').receivedAt >= find('style').finishedAt);
	assert.equal(find('ui').body.messages.at(-1).content, 'Sketch out-style over out-api. [ui]');
});

test('fail-fast job stops queued subtasks', async () => {
	answerByTag(tag => (tag === 'broken' ? openaiError(400, 'malformed request') : undefined), {delayMs: 100});
	await worker.call('/faults', {concurrency: 2});
	const subtasks = [
		{id: 'broken', prompt: 'Send a bad request. [broken]'},
		...Array.from({length: 20}, (_, index) => ({id: `p${index}`, prompt: `Part ${index}. [p${index}]`})),
	];

	const {status, result} = await runJob('section', {subtasks, failure: 'fail-fast', maxRetries: 0});

	assert.equal(result.ok, false);
	assert.equal(result.error.code, 'PROVIDER_ERROR');
	assert.equal(result.report.results.length, 21);
	assert.equal(result.report.results[0].status, 'failed');
	const cancelled = result.report.results.filter(entry => entry.status === 'cancelled');
	assert.ok(cancelled.length >= 18, `${cancelled.length} subtasks were cancelled`);
	assert.equal(server.requests().length, 21 - cancelled.length, 'no cancelled subtask was called');
	assert.equal(status.cancelled, cancelled.length);
});

test('settled vote acknowledges later samples without a call', async () => {
	server.setDefault(record => openaiOk('4', {delayMs: 30}));
	await worker.call('/faults', {concurrency: 2});
	const payload = {prompt: 'What is 2+2? Answer with a number.', voters: 9, extract: 'number', rule: {aheadBy: 2}, maxSamples: 9};

	const {status, result} = await runJob('vote', payload);

	assert.equal(result.ok, true, JSON.stringify(result.error));
	assert.equal(result.report.winner, '4');
	assert.equal(result.report.decided, true);
	assert.equal(status.settled, true);
	assert.equal(status.decidedAfter, 2);
	// Every queued sample is in the result once; those after the decision are cancelled.
	assert.deepEqual(result.report.samples.map(sample => sample.index), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
	assert.equal(result.report.valid, 2);
	assert.equal(result.report.cancelled, 7);
	// Only the two deciding samples and at most one claimed before the decision were called.
	const seeds = server.requests().map(record => record.body.seed);
	assert.ok(seeds.every(seed => seed <= 2), `samples ${seeds.join(', ')} were called`);
	await delay(300);
	assert.equal(server.requests().length, seeds.length, 'a sample was called after the job finished');
});

test('adaptive vote queues more samples until settled', async () => {
	const answers = ['4', '5', '4', '4', '4', '4', '4', '4', '4'];
	server.setDefault(record => openaiOk(answers[record.body.seed], {delayMs: 10}));
	const payload = {prompt: 'What is 2+2? Answer with a number.', voters: 2, extract: 'number', rule: {aheadBy: 2}, maxSamples: 9};

	const {status, result} = await runJob('vote', payload);

	assert.equal(result.ok, true, JSON.stringify(result.error));
	assert.equal(result.report.winner, '4');
	assert.ok(result.report.rounds >= 2, `${result.report.rounds} rounds`);
	assert.deepEqual(result.report.roundDetails[0].samples, [0, 1]);
	const drawn = result.report.samples.length;
	assert.ok(drawn >= 4, `${drawn} samples`);
	assert.ok(drawn < 9, `all ${drawn} samples were drawn`);
	assert.equal(server.requests().length, drawn);
	assert.equal(status.queued, drawn);
	assert.ok(result.report.samples.every(sample => sample.status === 'ok'));
});

test('last delivery records its error as failed', async () => {
	answerByTag();
	await worker.call('/faults', {failClaimsOf: ['subtask-lost']});
	const payload = {
		subtasks: [
			{id: 'kept', prompt: 'Keep me. [kept]'},
			{id: 'lost', prompt: 'Lose me. [lost]'},
		],
	};

	const {result} = await runJob('section', payload);

	assert.equal(result.ok, true, JSON.stringify(result.error));
	const lost = result.report.results.find(entry => entry.id === 'lost');
	assert.equal(lost.status, 'failed');
	assert.equal(lost.error.message, 'injected fault: the claim of subtask-lost failed');
	assert.equal(countByTag().get('lost'), undefined, 'the lost subtask was never called');
	assert.equal(result.report.results.find(entry => entry.id === 'kept').status, 'ok');
});

test('dead-lettered message is recorded as failed', async () => {
	answerByTag();
	await worker.call('/faults', {failClaimsOf: ['subtask-lost'], failRecordsOf: ['subtask-lost']});
	const payload = {
		subtasks: [
			{id: 'kept', prompt: 'Keep me. [kept]'},
			{id: 'lost', prompt: 'Lose me. [lost]'},
		],
	};

	const {result} = await runJob('section', payload);

	assert.equal(result.ok, true, JSON.stringify(result.error));
	const lost = result.report.results.find(entry => entry.id === 'lost');
	assert.equal(lost.status, 'failed');
	assert.match(lost.error.message, /the queue gave up on this message after \d+ deliveries/);
	assert.equal(countByTag().get('lost'), undefined, 'the lost subtask was never called');
	assert.equal(result.report.results.find(entry => entry.id === 'kept').status, 'ok');
});

test('job over the queue limits is refused before any call', async () => {
	answerByTag();
	const subtasks = [{id: 'only', prompt: 'Only. [only]'}];

	const tooBig = await worker.call('/job/start', {job: 'refused-1', kind: 'section', payload: {subtasks}, limits: {plan: 'free', queueBatchSize: 100}});
	const tooManyRetries = await worker.call('/job/start', {job: 'refused-2', kind: 'section', payload: {subtasks, maxRetries: 5}, limits: LIMITS});
	const badOptions = await worker.call('/job/start', {job: 'refused-3', kind: 'section', payload: {subtasks: [{id: 'a', prompt: '{{b}}'}]}, limits: LIMITS});

	assert.equal(tooBig.error.path, 'limits.queueBatchSize');
	assert.equal(tooManyRetries.error.path, 'limits.queueMaxRetries');
	assert.equal(badOptions.error.code, 'UNKNOWN_DEPENDENCY');
	await delay(200);
	assert.equal(server.requests().length, 0);
	const status = await worker.call('/job/status?job=refused-1');
	assert.equal(status.state, 'unknown', 'a refused job stores nothing');
});

test('starting a job twice changes nothing', async () => {
	answerByTag();
	const payload = {subtasks: [{id: 'once', prompt: 'Once. [once]'}]};

	const {job} = await runJob('section', payload);
	const again = await worker.call('/job/start', {job, kind: 'section', payload, limits: LIMITS});

	assert.equal(again.ok, true);
	assert.equal(again.report.started, false);
	assert.equal(again.report.state, 'done');
	await delay(200);
	assert.equal(server.requests().length, 1);
});
