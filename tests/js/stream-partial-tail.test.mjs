// Under the SSE standard an event cut off by the end of the stream, before its blank
// line and inside its last line, is discarded. An OpenAI stream that has sent its text
// and `finish_reason` and is then cut inside a trailing event resolves with that text,
// as a stream that ends without `[DONE]` does.

import assert from 'node:assert/strict';
import http from 'node:http';
import {after, before, test} from 'node:test';

import {complete, openai} from 'parallel-task-executor';

let server;
let baseURL;

/** Formats one OpenAI chat completion chunk as an SSE event. */
function chunk(delta, finishReason = null) {
	return `data: ${JSON.stringify({model: 'm', choices: [{index: 0, delta, finish_reason: finishReason}]})}\n\n`;
}

before(async () => {
	server = http.createServer((request, response) => {
		request.resume();
		request.on('end', () => {
			response.writeHead(200, {'content-type': 'text/event-stream'});
			// The usage chunk that follows `finish_reason` is cut in the middle.
			response.end(`${chunk({content: 'Paris'})}${chunk({}, 'stop')}data: {"choices":[],"usage":{"prompt_to`);
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

test('stream cut inside a trailing event keeps the answer', async () => {
	const provider = openai({baseURL, model: 'm', stream: true});

	const result = await complete({provider, prompt: 'q', maxRetries: 0});

	assert.equal(result.text, 'Paris');
	assert.equal(result.finishReason, 'stop');
});
