// The Workers limits, in workerd through Miniflare: at most 6 open requests per
// invocation, a request budget, module-scope state shared by concurrent requests,
// and a Response returned while a cancelled voter is still in flight. Local workerd
// does not enforce the connection cap itself, so the scripted server counts the
// requests in flight, and a fetch wrapper in the worker applies the strict rule.
import assert from 'node:assert/strict';
import {setTimeout as delay} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {after, before, beforeEach, test} from 'node:test';
import {openaiError, openaiOk, startScriptedServer} from '../support/scripted-server.mjs';
import {REQUEST_CONTEXT_ERRORS, startWorker} from '../support/workerd.mjs';

const WORKER = fileURLToPath(new URL('../runtimes/workerd/limits-worker.js', import.meta.url));
const CONNECTION_LIMIT_MESSAGE = 'Response closed due to connection limit';

let server;
let worker;

before(async () => {
	server = await startScriptedServer();
	worker = await startWorker(WORKER, {define: {__API_BASE__: `${server.url}/v1`}});
});

after(async () => {
	await worker?.dispose();
	await server?.close();
});

beforeEach(() => {
	server.reset();
	server.setDefault(null);
});

async function call(path) {
	const response = await worker.dispatchFetch(path);
	const text = await response.text();
	assert.equal(response.status, 200, `the worker answered ${path} with HTTP ${response.status}: ${text}`);
	return JSON.parse(text);
}

/** Builds an OpenAI reply whose headers come after 200 ms and whose body comes 300 ms later. */
function slowBodyReply(text) {
	return {
		status: 200,
		headers: {'content-type': 'application/json'},
		delayMs: 200,
		chunks: [{data: JSON.stringify(openaiOk(text).body), delayMs: 300}],
	};
}

test('ten voters never exceed six requests in flight', async () => {
	server.setDefault(openaiOk('42', {delayMs: 300}));

	const body = await call('/capped');

	assert.equal(body.ok, true, JSON.stringify(body.error));
	assert.equal(body.result.counts['42'], 10);
	assert.equal(body.result.samples.length, 10);
	assert.ok(body.result.samples.every(sample => sample.status === 'ok'));
	assert.equal(server.requests().length, 10);
	assert.ok(server.stats().maxInFlight <= 6, `the server saw ${server.stats().maxInFlight} requests in flight at once`);
	// The cap is a ceiling, not serialization: several requests overlapped.
	assert.ok(server.stats().maxInFlight >= 2, `the server saw only ${server.stats().maxInFlight} request in flight at once`);
	assert.ok(body.result.metrics.maxInFlight <= 6);
	assert.deepEqual(worker.errorLines(), []);
});

test('connection-limit fetch cancels a fan-out that reads bodies late', async () => {
	// Checks the shim itself: ten requests whose bodies are read only after all
	// headers have arrived must lose some responses to the connection limit.
	server.setDefault(slowBodyReply('42'));

	const body = await call('/all-headers-first');

	assert.equal(body.ok, true, JSON.stringify(body.error));
	assert.ok(body.shim.cancelled > 0, `the shim cancelled nothing: ${JSON.stringify(body.shim)}`);
	assert.ok(body.errors.length > 0);
	assert.ok(body.errors.every(message => message === CONNECTION_LIMIT_MESSAGE), JSON.stringify(body.errors));
});

test('voters finish under the strict connection-limit fetch', async () => {
	server.setDefault(slowBodyReply('42'));

	const body = await call('/shim');

	assert.equal(body.ok, true, JSON.stringify(body.error));
	assert.equal(body.shim.cancelled, 0, `the shim cancelled ${body.shim.cancelled} responses`);
	assert.ok(body.shim.maxOutstanding <= 6);
	assert.deepEqual(body.attemptErrors, []);
	assert.equal(body.result.counts['42'], 10);
	assert.deepEqual(body.result.samples.map(sample => sample.status), Array.from({length: 10}, () => 'ok'));
	assert.ok(body.result.samples.every(sample => sample.attempts.length === 1));
	assert.equal(server.requests().length, 10);
	assert.ok(server.stats().maxInFlight <= 6);
	assert.deepEqual(worker.errorLines(), []);
});

test('request budget stops retries before it is exceeded', async () => {
	server.setDefault(openaiError(503, 'The server is overloaded.'));

	const body = await call('/budget');

	// The worker caught a rejection, so nothing was thrown past it.
	assert.equal(body.ok, false, 'the vote resolved although every request failed');
	assert.ok(server.requests().length <= 50, `the server received ${server.requests().length} requests`);
	assert.equal(body.error.code, 'ALL_FAILED', body.error.message);

	const {samples} = body.error.report;
	assert.equal(samples.length, 10);
	assert.ok(samples.every(sample => sample.status === 'failed'));

	// A sample whose retries were not all used up stopped because of the budget.
	const stopped = samples.filter(sample => sample.error.code === 'BUDGET_EXCEEDED');
	assert.ok(stopped.length > 0, 'no sample reports the exhausted budget');
	for (const sample of stopped) {
		assert.match(sample.error.message, /budget/i);
		assert.match(sample.error.message, /maxRequests/);
	}

	for (const sample of samples.filter(sample => sample.error.code !== 'BUDGET_EXCEEDED')) {
		assert.equal(sample.error.code, 'PROVIDER_ERROR');
		assert.equal(sample.error.status, 503);
	}

	assert.equal(body.error.errors.length, 10);
	assert.deepEqual(body.error.errors.map(error => error.code), samples.map(sample => sample.error.code));
	assert.deepEqual(worker.errorLines(), []);
});

test('two requests share a module-scope provider and limiter', async () => {
	server.setDefault(openaiOk('42', {delayMs: 500}));

	const first = call('/shared');
	await delay(50);
	const second = call('/shared');
	const [a, b] = await Promise.all([first, second]);

	assert.equal(a.ok, true, JSON.stringify(a.error));
	assert.equal(b.ok, true, JSON.stringify(b.error));
	assert.equal(a.winner, '42');
	assert.equal(b.winner, '42');
	assert.deepEqual(a.counts, {42: 3});
	assert.deepEqual(b.counts, {42: 3});
	assert.equal(server.requests().length, 6);
	assert.equal(server.stats().clientCloses, 0);

	// The limiter allows 4, so the second request waited for the first one's permits.
	assert.ok(server.stats().maxInFlight <= 4, `the server saw ${server.stats().maxInFlight} requests in flight at once`);
	const lines = worker.logs.filter(line => REQUEST_CONTEXT_ERRORS.some(text => line.includes(text)));
	assert.deepEqual(lines, []);
	assert.deepEqual(worker.errorLines(), []);
});

test('response returns after the losing voter is aborted', async () => {
	server.setDefault(openaiOk('42', {delayMs: 50}));
	server.script([{match: {nth: 3}, respond: openaiOk('42', {delayMs: 5000})}]);

	const body = await call('/early-return');
	const returnedAt = server.now();

	assert.equal(body.ok, true, JSON.stringify(body.error));
	assert.equal(body.winner, '42');
	assert.equal(body.requestsStarted, 3);
	assert.deepEqual([...body.statuses].sort(), ['cancelled', 'ok', 'ok']);
	// The losing request's signal was aborted before the worker built its Response.
	assert.equal(body.abortedAtReturn.filter(Boolean).length, 1);

	const slow = await server.waitFor(() => server.requests().find(record => record.seq === 3 && record.clientClosedAt !== null), {timeoutMs: 3000});
	assert.ok(slow.clientClosedAt - returnedAt < 2000, `the slow request closed ${slow.clientClosedAt - returnedAt} ms after the response`);

	// Give workerd time to report work left over from the finished request.
	await delay(300);
	const lines = worker.logs.filter(line => REQUEST_CONTEXT_ERRORS.some(text => line.includes(text)));
	assert.deepEqual(lines, []);
	assert.deepEqual(worker.errorLines(), []);
});
