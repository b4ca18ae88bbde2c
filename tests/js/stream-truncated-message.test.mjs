// When a streamed response ends early, after its headers and some text arrived, the
// error message states that the stream ended early. It does not claim that the
// request failed before a response arrived, because the response did arrive.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';

import {anthropic, complete, openai} from 'parallel-task-executor';
import {startScriptedServer} from '../support/scripted-server.mjs';

let server;
let baseURL;

const OPENAI_STREAM = `data: ${JSON.stringify({model: 'm', choices: [{index: 0, delta: {content: 'Par'}, finish_reason: null}]})}\n\n`;
const ANTHROPIC_STREAM = [
	`event: message_start\ndata: ${JSON.stringify({type: 'message_start', message: {model: 'claude-test', content: [], usage: {input_tokens: 1}}})}\n\n`,
	`event: content_block_delta\ndata: ${JSON.stringify({type: 'content_block_delta', index: 0, delta: {type: 'text_delta', text: 'Par'}})}\n\n`,
].join('');

before(async () => {
	server = await startScriptedServer();
	server.setDefault(record => ({status: 200, headers: {'content-type': 'text/event-stream'}, body: record.path.endsWith('/messages') ? ANTHROPIC_STREAM : OPENAI_STREAM}));
	baseURL = `${server.url}/v1`;
});

after(async () => {
	await server.close();
});

/** Runs one call that must reject and returns its error. */
async function rejection(provider) {
	return complete({provider, prompt: 'q', maxRetries: 0}).then(
		() => assert.fail('the call should reject'),
		error => error,
	);
}

test('openai truncated stream error names the stream', async () => {
	const error = await rejection(openai({baseURL, model: 'm', stream: true}));

	assert.equal(error.code, 'PROVIDER_ERROR');
	assert.match(error.message, /stream ended/);
	assert.doesNotMatch(error.message, /before a response arrived/);
});

test('anthropic truncated stream error names the stream', async () => {
	const error = await rejection(anthropic({baseURL, model: 'claude-test', apiKey: 'sk-ant-test-key-123456', maxTokens: 16, stream: true}));

	assert.equal(error.code, 'PROVIDER_ERROR');
	assert.match(error.message, /stream ended/);
	assert.doesNotMatch(error.message, /before a response arrived/);
});
