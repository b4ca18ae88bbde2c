// The API key never shows in a result, also when a server echoes it back in a
// successful response's `model`, `finish_reason`, `logprobs` or `usage` fields,
// which the result passes on as `model`, `finishReason`, `logprobs` and `usage.raw`.

import assert from 'node:assert/strict';
import http from 'node:http';
import {after, before, test} from 'node:test';

import {anthropic, complete, openai} from 'parallel-task-executor';

const KEY = 'sk-proj-echoedkey0123456789';

let server;
let baseURL;

/** Returns the key the request carried, from either provider's auth header. */
function keyOf(request) {
	return request.headers['x-api-key'] ?? request.headers.authorization.replace('Bearer ', '');
}

/** Builds a successful body that carries the key outside the reply text. */
function echoBody(request) {
	const key = keyOf(request);
	if (request.url.endsWith('/messages')) {
		return {type: 'message', role: 'assistant', model: key, content: [{type: 'text', text: 'ok'}], stop_reason: key, usage: {input_tokens: 1, output_tokens: 1, service_tier: key}};
	}

	return {
		model: key,
		choices: [{index: 0, message: {role: 'assistant', content: 'ok'}, logprobs: {content: [{token: key, logprob: 0}]}, finish_reason: key}],
		usage: {prompt_tokens: 1, completion_tokens: 1, user: key},
	};
}

before(async () => {
	server = http.createServer((request, response) => {
		request.resume();
		request.on('end', () => {
			response.writeHead(200, {'content-type': 'application/json'});
			response.end(JSON.stringify(echoBody(request)));
		});
	});
	await new Promise(resolve => {
		server.listen(0, '127.0.0.1', resolve);
	});
	baseURL = `http://127.0.0.1:${server.address().port}/v1`;
});

after(async () => {
	await new Promise(resolve => {
		server.close(resolve);
	});
});

const cases = [
	['openai', () => openai({baseURL, model: 'm', apiKey: KEY})],
	['anthropic', () => anthropic({baseURL, model: 'm', apiKey: KEY, maxTokens: 16})],
];

for (const [name, makeProvider] of cases) {
	test(`${name} result hides an echoed key`, async () => {
		const result = await complete({provider: makeProvider(), prompt: 'q', maxRetries: 0});

		assert.equal(result.text, 'ok');
		assert.ok(!String(result.model).includes(KEY), `model shows the key: ${result.model}`);
		assert.ok(!String(result.finishReason).includes(KEY), `finishReason shows the key: ${result.finishReason}`);
		assert.ok(!JSON.stringify(result.logprobs).includes(KEY), 'logprobs show the key');
		assert.ok(!JSON.stringify(result.usage).includes(KEY), 'usage shows the key');
	});
}
