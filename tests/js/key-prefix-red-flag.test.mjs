// A stream holds back text that could be the start of the API key until a later piece
// shows it is not. When a red flag stops the stream early, that held-back start of the
// key stays out of the sample's text and out of the `delta` events.

import assert from 'node:assert/strict';
import http from 'node:http';
import {after, before, test} from 'node:test';

import {openai, vote} from 'parallel-task-executor';

const KEY = 'sk-proj-echoedkey0123456789abcdef';
const KEY_START = KEY.slice(0, 12);

let server;
let baseURL;

/** Formats one OpenAI chat completion chunk as an SSE event. */
function chunk(delta, finishReason = null) {
	return `data: ${JSON.stringify({model: 'm', choices: [{index: 0, delta, finish_reason: finishReason}]})}\n\n`;
}

before(async () => {
	server = http.createServer((request, response) => {
		request.resume();
		request.on('end', async () => {
			response.writeHead(200, {'content-type': 'text/event-stream'});
			// The first piece is long enough for the red flag and ends with the start of the key.
			response.write(chunk({content: `${'word '.repeat(40)}${KEY_START}`}));
			await new Promise(resolve => {
				setTimeout(resolve, 30);
			});
			response.end(`${chunk({content: `${KEY.slice(KEY_START.length)} tail`})}${chunk({}, 'stop')}data: [DONE]\n\n`);
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

test('red flag stop keeps key start hidden', async () => {
	const provider = openai({baseURL, model: 'm', apiKey: KEY, stream: true});
	const deltas = [];

	const result = await vote({
		provider,
		prompt: 'q',
		voters: 1,
		maxRetries: 0,
		redFlags: {maxOutputTokens: 20},
		onEvent(event) {
			if (event.type === 'delta') {
				deltas.push(event.text);
			}
		},
	}).catch(error => error.report);

	const [sample] = result.samples;
	assert.equal(sample.status, 'red-flagged');
	assert.equal(sample.reason, 'too-long');
	assert.ok(!sample.text.includes(KEY_START), `the sample text ends with the start of the key: ${sample.text.slice(-20)}`);
	assert.ok(!deltas.join('').includes(KEY_START), 'a delta event carries the start of the key');
});
