// The package in workerd: a worker that imports it by name, bundled with the Workers
// export conditions and run by Miniflare, calls the scripted server.
import assert from 'node:assert/strict';
import {fileURLToPath} from 'node:url';
import {after, before, beforeEach, test} from 'node:test';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';
import {startWorker} from '../support/workerd.mjs';

const WORKER = fileURLToPath(new URL('../runtimes/workerd/basic-worker.js', import.meta.url));

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
	server.setDefault(openaiOk('42'));
});

async function call(path) {
	const response = await worker.dispatchFetch(path);
	assert.equal(response.status, 200, `the worker answered ${path} with HTTP ${response.status}: ${await response.clone().text()}`);
	return response.json();
}

test('complete runs in workerd', async () => {
	server.setDefault(openaiOk('Hello from the scripted server'));

	const body = await call('/complete');

	assert.equal(body.ok, true, JSON.stringify(body.error));
	assert.equal(body.result.text, 'Hello from the scripted server');
	assert.equal(body.result.usage.inputTokens, 9);
	assert.equal(server.requests().length, 1);
	assert.equal(server.requests()[0].headers.authorization, 'Bearer sk-worker-test-key');
	assert.deepEqual(server.requests()[0].body.messages, [{role: 'user', content: 'Say hi'}]);
	assert.deepEqual(worker.errorLines(), []);
});

test('section runs a small DAG in workerd', async () => {
	server.script([
		{match: {contains: 'Design the table.'}, respond: openaiOk('TABLE')},
		{match: {contains: 'Sketch the page.'}, respond: openaiOk('PAGE')},
		{match: {contains: 'Write routes for TABLE.'}, respond: openaiOk('ROUTES')},
	]);

	const body = await call('/section');

	assert.equal(body.ok, true, JSON.stringify(body.error));
	assert.equal(body.result.output, 'TABLE\n\nROUTES\n\nPAGE');
	assert.deepEqual(body.result.results.map(result => [result.id, result.status]), [['schema', 'ok'], ['api', 'ok'], ['ui', 'ok']]);

	// The dependent subtask starts only after its dependency's response has ended.
	const records = server.requests();
	assert.equal(records.length, 3);
	const schema = records.find(record => record.bodyText.includes('Design the table.'));
	const api = records.find(record => record.bodyText.includes('Write routes for TABLE.'));
	assert.ok(api.receivedAt >= schema.finishedAt, `api started at ${api.receivedAt} ms, before schema finished at ${schema.finishedAt} ms`);
	assert.deepEqual(worker.errorLines(), []);
});

test('vote runs three voters in workerd', async () => {
	server.setDefault(openaiOk('The answer is 42.', {delayMs: 100}));

	const body = await call('/vote');

	assert.equal(body.ok, true, JSON.stringify(body.error));
	assert.equal(body.result.winner, '42');
	assert.equal(body.result.counts['42'], 3);
	assert.equal(body.result.valid, 3);
	assert.deepEqual(body.result.samples.map(sample => sample.status), ['ok', 'ok', 'ok']);
	assert.equal(server.requests().length, 3);

	// The three voters ran at the same time.
	assert.equal(server.stats().maxInFlight, 3);
	assert.deepEqual(worker.errorLines(), []);
});

test('worker reuses its module-scope provider', async () => {
	const first = await call('/complete');
	const second = await call('/complete');

	assert.equal(first.ok, true, JSON.stringify(first.error));
	assert.equal(second.ok, true, JSON.stringify(second.error));
	assert.equal(server.requests().length, 2);
	assert.deepEqual(worker.errorLines(), []);
});

test('worker console output reaches the harness logs', async () => {
	const response = await worker.dispatchFetch('/console');

	assert.equal(await response.text(), 'logged');
	await worker.waitForLog('basic-worker console check');
});
