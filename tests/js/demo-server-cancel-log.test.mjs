// When the page cancels a /v1 call (a vote settled early, or Stop), the demo server
// closes the upstream request and logs nothing, because the model did not fail. A call
// that the local model does fail (no model listening) is still logged and gets an HTTP
// 502 response.

import assert from 'node:assert/strict';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {test} from 'node:test';
import {startDemoServer} from '../../examples/lib/demo-server.mjs';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('demo server logs no failure for a cancelled call', async () => {
	const model = await startScriptedServer();
	model.setDefault(openaiOk('4', {delayMs: 5000}));
	const lines = [];
	const demo = await startDemoServer({
		wwwRoot: path.join(repoRoot, 'www'),
		packageRoot: path.join(repoRoot, 'pkg'),
		modelUrl: model.url,
		config: {},
		port: 0,
		log: line => lines.push(line),
	});
	try {
		// The page's fetch is aborted before the model sends its response.
		const controller = new AbortController();
		const request = fetch(`${demo.url}v1/chat/completions`, {
			method: 'POST',
			headers: {'content-type': 'application/json'},
			body: JSON.stringify({model: 'smollm2', messages: [{role: 'user', content: 'What is 2+2?'}]}),
			signal: controller.signal,
		});
		await waitFor(() => model.requests().length === 1);
		controller.abort();
		await assert.rejects(request, {name: 'AbortError'});
		await waitFor(() => model.requests()[0].outcome !== null);
		await new Promise(resolve => {
			setTimeout(resolve, 100);
		});

		assert.equal(model.requests()[0].outcome, 'client-closed', 'the upstream request was closed');
		assert.deepEqual(lines.filter(line => /failed/.test(line)), []);
		assert.deepEqual(lines, [], 'the demo server logged a cancelled call');
	} finally {
		await demo.close();
		await model.close();
	}
});

test('demo server logs a failed model call', async () => {
	// A port that was just free: nothing listens there.
	const probe = await startScriptedServer();
	const closedUrl = probe.url;
	await probe.close();
	const lines = [];
	const demo = await startDemoServer({
		wwwRoot: path.join(repoRoot, 'www'),
		packageRoot: path.join(repoRoot, 'pkg'),
		modelUrl: closedUrl,
		config: {},
		port: 0,
		log: line => lines.push(line),
	});
	try {
		const response = await fetch(`${demo.url}v1/chat/completions`, {
			method: 'POST',
			headers: {'content-type': 'application/json'},
			body: JSON.stringify({model: 'smollm2', messages: [{role: 'user', content: 'What is 2+2?'}]}),
		});
		const body = await response.json();

		assert.equal(response.status, 502);
		assert.match(body.error.message, /^the local model did not respond: /);
		assert.equal(lines.length, 1, lines.join('\n'));
		assert.match(lines[0], /^demo server: POST \/v1\/chat\/completions to the local model failed: /);
	} finally {
		await demo.close();
	}
});

async function waitFor(check) {
	for (let i = 0; i < 200; i++) {
		if (check()) {
			return;
		}

		// eslint-disable-next-line no-await-in-loop
		await new Promise(resolve => {
			setTimeout(resolve, 10);
		});
	}

	throw new Error('condition not reached within 2 s');
}

