// A streamed Anthropic text block can carry text in its `content_block_start` event,
// as a non-streamed message carries it in `content[].text`. That text is part of the
// result, before the block's `text_delta` pieces, and of the `delta` events.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';

import {anthropic, complete} from 'parallel-task-executor';
import {startScriptedServer} from '../support/scripted-server.mjs';

let server;
let baseURL;

/** Formats one Anthropic Messages stream event. */
function event(type, fields) {
	return `event: ${type}\ndata: ${JSON.stringify({type, ...fields})}\n\n`;
}

const STREAM = [
	event('message_start', {message: {id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-test', content: [], usage: {input_tokens: 4, output_tokens: 1}}}),
	event('content_block_start', {index: 0, content_block: {type: 'text', text: 'Hello'}}),
	event('content_block_delta', {index: 0, delta: {type: 'text_delta', text: ' world'}}),
	event('content_block_stop', {index: 0}),
	event('message_delta', {delta: {stop_reason: 'end_turn'}, usage: {output_tokens: 2}}),
	event('message_stop', {}),
].join('');

before(async () => {
	server = await startScriptedServer();
	server.setDefault({status: 200, headers: {'content-type': 'text/event-stream'}, body: STREAM});
	baseURL = `${server.url}/v1`;
});

after(async () => {
	await server.close();
});

test('anthropic stream keeps text of content_block_start', async () => {
	const provider = anthropic({baseURL, model: 'claude-test', apiKey: 'sk-ant-test-key-123456', maxTokens: 16, stream: true});
	const deltas = [];

	const result = await complete({
		provider,
		prompt: 'q',
		maxRetries: 0,
		onEvent(runEvent) {
			if (runEvent.type === 'delta') {
				deltas.push(runEvent.text);
			}
		},
	});

	assert.equal(result.text, 'Hello world');
	assert.equal(deltas.join(''), 'Hello world');
});
