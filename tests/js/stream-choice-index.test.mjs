// A streamed OpenAI reply with several choices (`n: 2` through extraBody) interleaves
// chunks of choice 0 and choice 1. The result is choice 0's text and finish reason,
// the choice a non-streamed call reads, never a mix of both choices.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';

import {complete, openai} from 'parallel-task-executor';
import {startScriptedServer} from '../support/scripted-server.mjs';

let server;
let baseURL;

/** Formats one OpenAI chat completion chunk for choice `index` as an SSE event. */
function chunk(index, delta, finishReason = null) {
	return `data: ${JSON.stringify({model: 'm', choices: [{index, delta, finish_reason: finishReason}]})}\n\n`;
}

const STREAM = [
	chunk(0, {role: 'assistant', content: 'Yes'}),
	chunk(1, {role: 'assistant', content: 'No'}),
	chunk(0, {content: '!'}),
	chunk(1, {content: '?'}),
	chunk(0, {}, 'stop'),
	chunk(1, {}, 'length'),
	'data: [DONE]\n\n',
].join('');

before(async () => {
	server = await startScriptedServer();
	server.setDefault({status: 200, headers: {'content-type': 'text/event-stream'}, body: STREAM});
	baseURL = `${server.url}/v1`;
});

after(async () => {
	await server.close();
});

test('stream with two choices reads choice 0', async () => {
	const provider = openai({baseURL, model: 'm', stream: true, extraBody: {n: 2}});

	const result = await complete({provider, prompt: 'q', maxRetries: 0});

	assert.equal(result.text, 'Yes!');
	assert.equal(result.finishReason, 'stop');
});
