// Sectioning and voting as Cloudflare Workflows (parallel-task-executor/cloudflare), in
// Miniflare's local Workflows engine against the scripted server. The tests cover one
// durable step per call, dependencies, step retries in place of the library's,
// failures kept as outcomes, early-stopping votes, replays that repeat no finished
// call, and plans refused before they start because they exceed the plan limits.
import assert from 'node:assert/strict';
import {setTimeout as delay} from 'node:timers/promises';
import {after, before, beforeEach, test} from 'node:test';
import {openaiError, openaiOk, startScriptedServer} from '../support/scripted-server.mjs';
import {REQUEST_CONTEXT_ERRORS} from '../support/workerd.mjs';
import {startCloudflareWorker} from '../runtimes/cloudflare/harness.mjs';

let server;
let worker;
let instances = 0;

before(async () => {
	server = await startScriptedServer();
	worker = await startCloudflareWorker(server);
});

after(async () => {
	await worker?.dispose();
	await server?.close();
});

beforeEach(() => {
	server.reset();
});

/** Returns the tag that ends a request's last message, such as "schema" in "Design it. [schema]". */
function tagOf(record) {
	const text = record.body?.messages?.at(-1)?.content ?? '';
	return /\[([\w-]+)\]$/.exec(text)?.[1] ?? null;
}

function requestsFor(tag) {
	return server.requests().filter(record => tagOf(record) === tag);
}

/** Scripts the reply to each tag as its upper-case name. `faults` maps a tag to a function of the request number (1-based) that returns another action. */
function answerByTag(faults = {}, {delayMs = 30} = {}) {
	const seen = new Map();
	server.setDefault(record => {
		const tag = tagOf(record);
		const n = (seen.get(tag) ?? 0) + 1;
		seen.set(tag, n);
		return faults[tag]?.(n) ?? openaiOk(String(tag).toUpperCase(), {delayMs});
	});
}

/** Creates a Workflow instance and resolves with its final status (complete or errored). */
async function runWorkflow(kind, options, config = {limits: 'paid'}) {
	const id = `${kind}-${++instances}`;
	await worker.call('/workflow/create', {kind, id, options, config});
	const status = await worker.waitFor(`/workflow/status?kind=${kind}&id=${id}`, value => ['complete', 'errored', 'terminated'].includes(value.status));
	return {id, ...status};
}

function statuses(report) {
	return Object.fromEntries(report.results.map(result => [result.id, result.status]));
}

const DAG = {
	maxRetries: 2,
	retry: {baseDelayMs: 100},
	subtasks: [
		{id: 'schema', prompt: 'Design the table. [schema]'},
		{id: 'style', prompt: 'Pick the colours. [style]'},
		{id: 'api', prompt: 'Write routes for {{schema}}. [api]'},
		{id: 'ui', prompt: 'Sketch the page in {{style}} over {{api}}. [ui]'},
		{id: 'flaky', prompt: 'Answer after one overload. [flaky]'},
		{id: 'broken', prompt: 'Send a bad request. [broken]'},
		{id: 'after', prompt: 'Build on {{broken}}. [after]'},
		{id: 'down', prompt: 'Call a server that stays down. [down]'},
	],
};

const DAG_FAULTS = {
	flaky: n => (n === 1 ? openaiError(503, 'overloaded') : undefined),
	broken: () => openaiError(400, 'malformed request'),
	down: () => openaiError(503, 'down for maintenance'),
};

test('section workflow runs a DAG with failures', async () => {
	answerByTag(DAG_FAULTS);

	const {status, output} = await runWorkflow('section', DAG);

	assert.equal(status, 'complete');
	assert.equal(output.ok, true, JSON.stringify(output.error));
	const {report} = output;
	assert.deepEqual(report.results.map(result => result.id), DAG.subtasks.map(subtask => subtask.id), 'every subtask appears once, in order');
	assert.deepEqual(statuses(report), {schema: 'ok', style: 'ok', api: 'ok', ui: 'ok', flaky: 'ok', broken: 'failed', after: 'skipped', down: 'failed'});
	assert.equal(report.output, ['SCHEMA', 'STYLE', 'API', 'UI', 'FLAKY'].join('\n\n'));

	// One request per step attempt: the step's retries replace the library's.
	const counts = Object.fromEntries(DAG.subtasks.map(subtask => [subtask.id, requestsFor(subtask.id).length]));
	assert.deepEqual(counts, {schema: 1, style: 1, api: 1, ui: 1, flaky: 2, broken: 1, after: 0, down: 3});

	// A retryable failure that outlasts every retry is kept as a failed outcome.
	const down = report.results.find(result => result.id === 'down');
	assert.equal(down.error.status, 503);
	assert.equal(down.error.retryable, true);
	assert.equal(report.results.find(result => result.id === 'broken').error.status, 400);
	assert.deepEqual(report.results.find(result => result.id === 'after').error.skippedBecause, ['broken']);
});

test('section workflow starts a subtask after its dependencies', async () => {
	answerByTag(DAG_FAULTS);

	const {output} = await runWorkflow('section', DAG);

	assert.equal(output.ok, true, JSON.stringify(output.error));
	const [schema] = requestsFor('schema');
	const [style] = requestsFor('style');
	const [api] = requestsFor('api');
	const [ui] = requestsFor('ui');
	assert.ok(api.receivedAt >= schema.finishedAt, `api started at ${api.receivedAt} ms, before schema finished at ${schema.finishedAt} ms`);
	assert.ok(ui.receivedAt >= api.finishedAt, `ui started at ${ui.receivedAt} ms, before api finished at ${api.finishedAt} ms`);
	assert.ok(ui.receivedAt >= style.finishedAt);
	assert.match(api.body.messages.at(-1).content, /^Write routes for SCHEMA\./);
	assert.match(ui.body.messages.at(-1).content, /^Sketch the page in STYLE over API\./);

	// Independent subtasks ran in parallel, within the cap of 6 open requests.
	assert.ok(server.stats().maxInFlight >= 2, `only ${server.stats().maxInFlight} request in flight at once`);
	assert.ok(server.stats().maxInFlight <= 6, `${server.stats().maxInFlight} requests in flight at once`);
	assert.deepEqual(worker.logs.filter(line => REQUEST_CONTEXT_ERRORS.some(text => line.includes(text))), []);
});

test('section workflow waits the step backoff between attempts', async () => {
	answerByTag(DAG_FAULTS);

	await runWorkflow('section', DAG);

	// Workflows wait delay × 2^(attempt - 1): 100 ms, then 200 ms.
	const down = requestsFor('down');
	assert.equal(down.length, 3);
	assert.ok(down[1].receivedAt - down[0].finishedAt >= 95, `the first retry came ${down[1].receivedAt - down[0].finishedAt} ms after the failure`);
	assert.ok(down[2].receivedAt - down[1].finishedAt >= 195, `the second retry came ${down[2].receivedAt - down[1].finishedAt} ms after the failure`);
	const flaky = requestsFor('flaky');
	assert.ok(flaky[1].receivedAt - flaky[0].finishedAt >= 95);
});

test('section workflow report matches an in-process section', async () => {
	answerByTag(DAG_FAULTS);
	const {output} = await runWorkflow('section', DAG);
	answerByTag(DAG_FAULTS);
	const inProcess = await worker.call('/in-process', {kind: 'section', options: {...DAG, retry: {baseDelayMs: 10}}});

	assert.equal(inProcess.ok, true, JSON.stringify(inProcess.error));
	assert.deepEqual(Object.keys(output.report).sort(), Object.keys(inProcess.report).sort());
	assert.deepEqual(Object.keys(output.report.results[0]).sort(), Object.keys(inProcess.report.results[0]).sort());
	assert.equal(output.report.output, inProcess.report.output);
	assert.deepEqual(statuses(output.report), statuses(inProcess.report));
	assert.deepEqual(output.report.usage, inProcess.report.usage);
	assert.deepEqual(output.report.metrics.criticalPath, inProcess.report.metrics.criticalPath);
});

test('fail-fast workflow reports every subtask', async () => {
	answerByTag({broken: () => openaiError(400, 'malformed request')}, {delayMs: 150});
	const options = {
		failure: 'fail-fast',
		maxRetries: 0,
		subtasks: [
			{id: 'broken', prompt: 'Send a bad request. [broken]'},
			{id: 'slow', prompt: 'Take a while. [slow]'},
			{id: 'next', prompt: 'Continue from {{slow}}. [next]'},
		],
	};

	const {status, output} = await runWorkflow('section', options);

	assert.equal(status, 'complete');
	assert.equal(output.ok, false);
	assert.equal(output.error.code, 'PROVIDER_ERROR');
	assert.match(output.error.message, /broken/);
	assert.deepEqual(output.report.results.map(result => result.id), ['broken', 'slow', 'next']);
	assert.equal(statuses(output.report).broken, 'failed');
	assert.equal(statuses(output.report).next, 'cancelled', 'nothing starts after a required failure');
	assert.equal(requestsFor('next').length, 0);
});

/** Scripts the reply to each vote sample by its seed (the sample index, as the provider's seed is 0). */
function answerBySeed(answers, {delayMs = 20} = {}) {
	server.setDefault(record => openaiOk(answers[record.body.seed] ?? '7', {delayMs}));
}

test('adaptive vote workflow stops without pending work', async () => {
	answerBySeed(['4', '5', '4', '4', '4', '4', '4', '4', '4']);
	const options = {prompt: 'What is 2+2? Answer with a number.', voters: 2, extract: 'number', rule: {aheadBy: 2}, maxSamples: 9};

	const {status, output} = await runWorkflow('vote', options);

	assert.equal(status, 'complete');
	assert.equal(output.ok, true, JSON.stringify(output.error));
	const result = output.report;
	assert.equal(result.winner, '4');
	assert.equal(result.decided, true);
	assert.ok(result.rounds >= 2, `the vote took ${result.rounds} rounds`);
	const drawn = result.samples.length;
	assert.ok(drawn >= 4, `the vote drew ${drawn} samples`);
	assert.ok(drawn < 9, `the vote drew all ${drawn} samples`);
	assert.deepEqual(result.samples.map(sample => sample.index), Array.from({length: drawn}, (_, index) => index));
	assert.ok(result.samples.every(sample => sample.status === 'ok'));

	// One request per drawn sample and none after the decision.
	const seeds = server.requests().map(record => record.body.seed).sort((a, b) => a - b);
	assert.deepEqual(seeds, Array.from({length: drawn}, (_, index) => index));
	await delay(300);
	assert.equal(server.requests().length, drawn, 'a request arrived after the workflow completed');
});

test('vote workflow result matches an in-process vote', async () => {
	answerBySeed(['4', '4', '5', '4', '5']);
	const options = {prompt: 'What is 2+2? Answer with a number.', voters: 5, extract: 'number', rule: 'plurality'};

	const {output} = await runWorkflow('vote', options);
	const inProcess = await worker.call('/in-process', {kind: 'vote', options});

	assert.equal(output.ok, true, JSON.stringify(output.error));
	assert.equal(inProcess.ok, true, JSON.stringify(inProcess.error));
	assert.deepEqual(Object.keys(output.report).sort(), Object.keys(inProcess.report).sort());
	assert.equal(output.report.winner, inProcess.report.winner);
	assert.deepEqual(output.report.counts, {4: 3, 5: 2});
	assert.equal(output.report.rounds, 1);
	assert.equal(server.requests().length, 10, 'five samples in each run');
});

test('vote workflow keeps a failed sample', async () => {
	server.setDefault(record => (record.body.seed === 1 ? openaiError(500, 'internal error') : openaiOk('4')));
	const options = {prompt: 'What is 2+2?', voters: 3, extract: 'number', rule: 'plurality', maxRetries: 1, retry: {baseDelayMs: 10}};

	const {output} = await runWorkflow('vote', options);

	assert.equal(output.ok, true, JSON.stringify(output.error));
	assert.equal(output.report.failed, 1);
	assert.equal(output.report.samples[1].status, 'failed');
	assert.equal(output.report.samples[1].error.status, 500);
	assert.equal(server.requests().filter(record => record.body.seed === 1).length, 2, 'one attempt and one step retry');
});

test('replayed steps repeat no finished call', async () => {
	answerByTag(DAG_FAULTS, {delayMs: 5});

	const result = await worker.call('/workflow/replay', {options: DAG, config: {limits: 'paid'}});

	assert.equal(result.first.ok, true, JSON.stringify(result.first.error));
	assert.equal(result.second.ok, true, JSON.stringify(result.second.error));
	// The steps are named by the plan's stable keys, the same on both runs.
	const keys = ['subtask-schema', 'subtask-style', 'subtask-api', 'subtask-ui', 'subtask-flaky', 'subtask-broken', 'subtask-down', 'finish'];
	assert.deepEqual([...result.firstNames].sort(), [...keys].sort());
	assert.deepEqual([...result.secondNames].sort(), [...keys].sort());
	assert.equal(server.requests().length, 1 + 1 + 1 + 1 + 2 + 1 + 3, 'the second run made no request');
	assert.equal(result.second.report.output, result.first.report.output);
	assert.deepEqual(statuses(result.second.report), statuses(result.first.report));
	// Without a step context the exhausted step throws; its outcome is rebuilt from the error.
	const down = result.second.report.results.find(entry => entry.id === 'down');
	assert.equal(down.status, 'failed');
	assert.equal(down.error.status, 503);
});

test('paused workflow resumes without repeating calls', async () => {
	answerByTag({}, {delayMs: 300});
	const options = {
		subtasks: [
			{id: 'one', prompt: 'First. [one]'},
			{id: 'two', prompt: 'After {{one}}. [two]'},
			{id: 'three', prompt: 'After {{two}}. [three]'},
			{id: 'four', prompt: 'After {{three}}. [four]'},
		],
	};
	const id = `section-${++instances}`;
	await worker.call('/workflow/create', {kind: 'section', id, options, config: {limits: 'paid'}});
	const deadline = performance.now() + 10_000;
	while (requestsFor('two').length === 0 && performance.now() < deadline) {
		// eslint-disable-next-line no-await-in-loop
		await delay(20);
	}

	await worker.call(`/workflow/pause?kind=section&id=${id}`, {});
	await worker.waitFor(`/workflow/status?kind=section&id=${id}`, value => value.status === 'paused');
	const whilePaused = server.requests().length;
	await delay(700);
	assert.equal(server.requests().length, whilePaused, 'a call started while the instance was paused');
	assert.ok(whilePaused < 4, `all ${whilePaused} calls ran before the pause took effect`);

	await worker.call(`/workflow/resume?kind=section&id=${id}`, {});
	const status = await worker.waitFor(`/workflow/status?kind=section&id=${id}`, value => value.status === 'complete');

	assert.equal(status.output.ok, true, JSON.stringify(status.output.error));
	assert.equal(status.output.report.output, 'ONE\n\nTWO\n\nTHREE\n\nFOUR');
	for (const tag of ['one', 'two', 'three', 'four']) {
		assert.equal(requestsFor(tag).length, 1, `${tag} was called ${requestsFor(tag).length} times`);
	}
});

test('plan over the step limit is refused before any call', async () => {
	answerByTag();
	const subtasks = Array.from({length: 2002}, (_, index) => ({id: `s${index}`, prompt: `Part ${index}. [s${index}]`}));

	const {status, output} = await runWorkflow('section', {subtasks}, {limits: 'free'});

	assert.equal(status, 'complete');
	assert.equal(output.ok, false);
	assert.equal(output.error.name, 'RangeError');
	assert.equal(output.error.code, 'INVALID_OPTIONS');
	assert.equal(output.error.path, 'limits.steps');
	assert.equal(output.error.needed, 2003);
	assert.equal(output.error.limit, 1024);
	assert.match(output.error.message, /^limits\.steps: the plan needs 2,003 steps .* 1,024 on the free plan; run it through Queues/);
	assert.equal(server.requests().length, 0);
});

test('limits name what the plan exceeds', async () => {
	const subtasks = Array.from({length: 40}, (_, index) => ({id: `s${index}`, prompt: `Part ${index}.`}));
	const check = (engine, limits, options = {subtasks}) => worker.call('/check-limits', {kind: 'section', options, engine, limits});

	const free = await check('workflow', 'free');
	assert.equal(free.ok, false);
	assert.equal(free.error.path, 'limits.subrequests');
	assert.match(free.error.message, /120 subrequests \(40 calls × 3 attempts with maxRetries 2\).* 50 on the free plan/);

	const fewerRetries = await check('workflow', 'free', {subtasks, maxRetries: 0});
	assert.equal(fewerRetries.ok, true, JSON.stringify(fewerRetries.error));
	assert.deepEqual(fewerRetries.report, {engine: 'workflow', plan: 'free', calls: 40, steps: 41, subrequests: 40});

	const paid = await check('workflow', 'paid');
	assert.equal(paid.ok, true);
	assert.equal(paid.report.steps, 41);

	const batch = await check('queues', {plan: 'free', queueBatchSize: 100});
	assert.equal(batch.error.path, 'limits.queueBatchSize');
	assert.match(batch.error.message, /50 subrequests on the free plan/);

	const retries = await check('queues', 'paid', {subtasks, maxRetries: 5});
	assert.equal(retries.error.path, 'limits.queueMaxRetries');

	const queues = await check('queues', {plan: 'paid', queueBatchSize: 50});
	assert.equal(queues.ok, true, JSON.stringify(queues.error));
	assert.equal(queues.report.batches, 1);

	const unknown = await check('workflow', {plan: 'paid', step: 20});
	assert.equal(unknown.error.name, 'TypeError');
	assert.equal(unknown.error.path, 'limits.step');

	const ceiling = await check('workflow', {plan: 'paid', steps: 30_000});
	assert.equal(ceiling.error.name, 'RangeError');
	assert.match(ceiling.error.message, /above Cloudflare's maximum of 25,000/);

	// A judge scores each distinct answer, so a judged vote of 9 samples may make 18 calls.
	const judged = await worker.call('/check-limits', {
		kind: 'vote',
		engine: 'workflow',
		limits: 'free',
		options: {prompt: 'Rate it.', voters: 9, rule: {score: {criteria: [{name: 'accuracy', weight: 1}], passScore: 50}}, judge: {}},
	});
	assert.equal(judged.ok, false, JSON.stringify(judged));
	assert.equal(judged.error.path, 'limits.subrequests');
	assert.match(judged.error.message, /54 subrequests \(18 calls × 3 attempts/);
});
