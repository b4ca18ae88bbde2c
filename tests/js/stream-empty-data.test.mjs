// An SSE event whose `data:` field is empty is never dispatched under the SSE
// standard, so proxies use it as a keep-alive. An Anthropic stream with such an
// event between its real events completes with the streamed text.

import assert from 'node:assert/strict';
import http from 'node:http';
import {after, before, test} from 'node:test';

import {anthropic, complete} from 'parallel-task-executor';

let server;
let baseURL;

/** Formats one Anthropic Messages stream event. */
function event(type, fields) {
	return `event: ${type}\ndata: ${JSON.stringify({type, ...fields})}\n\n`;
}

const STREAM = [
	event('message_start', {message: {id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-test', content: [], usage: {input_tokens: 4, output_tokens: 1}}}),
	'data:\n\n',
	event('content_block_start', {index: 0, content_block: {type: 'text', text: ''}}),
	event('content_block_delta', {index: 0, delta: {type: 'text_delta', text: 'Hi'}}),
	': keep-alive\ndata:\n\n',
	event('content_block_stop', {index: 0}),
	event('message_delta', {delta: {stop_reason: 'end_turn'}, usage: {output_tokens: 2}}),
	event('message_stop', {}),
].join('');

before(async () => {
	server = http.createServer((request, response) => {
		request.resume();
		request.on('end', () => {
			response.writeHead(200, {'content-type': 'text/event-stream'});
			response.end(STREAM);
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

test('anthropic stream skips empty data events', async () => {
	const provider = anthropic({baseURL, model: 'claude-test', apiKey: 'sk-ant-test-key-123456', maxTokens: 16, stream: true});

	const result = await complete({provider, prompt: 'q', maxRetries: 0});

	assert.equal(result.text, 'Hi');
	assert.equal(result.finishReason, 'stop');
	assert.equal(result.usage.outputTokens, 2);
});
