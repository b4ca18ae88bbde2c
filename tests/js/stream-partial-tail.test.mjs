// Under the SSE standard an event cut off by the end of the stream, before its blank
// line and inside its last line, is discarded. An OpenAI stream that has sent its text
// and `finish_reason` and is then cut inside a trailing event resolves with that text,
// as a stream that ends without `[DONE]` does.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';

import {complete, openai} from 'parallel-task-executor';
import {startScriptedServer} from '../support/scripted-server.mjs';

let server;
let baseURL;

/** Formats one OpenAI chat completion chunk as an SSE event. */
function chunk(delta, finishReason = null) {
	return `data: ${JSON.stringify({model: 'm', choices: [{index: 0, delta, finish_reason: finishReason}]})}\n\n`;
}

before(async () => {
	server = await startScriptedServer();
	// The usage chunk that follows `finish_reason` is cut in the middle.
	server.setDefault({status: 200, headers: {'content-type': 'text/event-stream'}, body: `${chunk({content: 'Paris'})}${chunk({}, 'stop')}data: {"choices":[],"usage":{"prompt_to`});
	baseURL = `${server.url}/v1`;
});

after(async () => {
	await server.close();
});

test('stream cut inside a trailing event keeps the answer', async () => {
	const provider = openai({baseURL, model: 'm', stream: true});

	const result = await complete({provider, prompt: 'q', maxRetries: 0});

	assert.equal(result.text, 'Paris');
	assert.equal(result.finishReason, 'stop');
});
