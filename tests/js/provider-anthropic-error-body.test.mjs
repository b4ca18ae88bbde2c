// A non-streamed Anthropic response whose JSON body is an `error` object (with HTTP
// 200) fails with a message about the response body. The message does not say that a
// stream reported the error, because no stream was requested.

import assert from 'node:assert/strict';
import http from 'node:http';
import {after, before, test} from 'node:test';

import {anthropic, complete} from 'parallel-task-executor';

let server;
let baseURL;

before(async () => {
	server = http.createServer((request, response) => {
		request.resume();
		request.on('end', () => {
			response.writeHead(200, {'content-type': 'application/json'});
			response.end(JSON.stringify({type: 'error', error: {type: 'api_error', message: 'Internal server error'}}));
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

test('anthropic error body message names no stream', async () => {
	const provider = anthropic({baseURL, model: 'claude-test', apiKey: 'sk-ant-test-key-123456', maxTokens: 16});

	const error = await complete({provider, prompt: 'q', maxRetries: 0}).then(
		() => assert.fail('the call should reject'),
		caught => caught,
	);

	assert.equal(error.code, 'PROVIDER_ERROR');
	assert.equal(error.providerType, 'api_error');
	assert.match(error.message, /api_error/);
	assert.doesNotMatch(error.message, /stream/);
});
