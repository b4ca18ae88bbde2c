// A server-sent event stream may start with a UTF-8 byte order mark, which the SSE
// standard requires a parser to skip. The first event of such a stream counts like any
// other, so its text is part of the result and of the `delta` events.

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
	server.setDefault({status: 200, headers: {'content-type': 'text/event-stream'}, body: `\uFEFF${chunk({content: 'Hel'})}${chunk({content: 'lo'})}${chunk({}, 'stop')}data: [DONE]\n\n`});
	baseURL = `${server.url}/v1`;
});

after(async () => {
	await server.close();
});

test('stream with a leading BOM keeps its first event', async () => {
	const provider = openai({baseURL, model: 'm', stream: true});
	const deltas = [];
	const result = await complete({
		provider,
		prompt: 'q',
		maxRetries: 0,
		onEvent(event) {
			if (event.type === 'delta') {
				deltas.push(event.text);
			}
		},
	});

	assert.equal(result.text, 'Hello');
	assert.equal(deltas.join(''), 'Hello');
});
