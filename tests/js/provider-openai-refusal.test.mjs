// An OpenAI reply that carries a `refusal` in place of `content` is not a usable reply.
// Its finishReason is "content_filter", as for Anthropic's `stop_reason: "refusal"`,
// so a vote excludes it instead of counting it as an empty reply.

import assert from 'node:assert/strict';
import http from 'node:http';
import {after, before, test} from 'node:test';

import {complete, openai} from 'parallel-task-executor';

let server;
let baseURL;

const REFUSAL = 'I cannot help with that.';

/** Formats one OpenAI chat completion chunk as an SSE event. */
function chunk(delta, finishReason = null) {
	return `data: ${JSON.stringify({model: 'm', choices: [{index: 0, delta, finish_reason: finishReason}]})}\n\n`;
}

before(async () => {
	server = http.createServer((request, response) => {
		let body = '';
		request.on('data', piece => {
			body += piece;
		});
		request.on('end', () => {
			if (JSON.parse(body).stream) {
				response.writeHead(200, {'content-type': 'text/event-stream'});
				response.end(`${chunk({role: 'assistant', content: null, refusal: ''})}${chunk({refusal: REFUSAL})}${chunk({}, 'stop')}data: [DONE]\n\n`);
				return;
			}

			response.writeHead(200, {'content-type': 'application/json'});
			response.end(JSON.stringify({model: 'm', choices: [{index: 0, message: {role: 'assistant', content: null, refusal: REFUSAL}, finish_reason: 'stop'}]}));
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

for (const stream of [false, true]) {
	test(`openai refusal is content_filter (stream: ${stream})`, async () => {
		const result = await complete({provider: openai({baseURL, model: 'm', stream}), prompt: 'q', maxRetries: 0});

		assert.equal(result.finishReason, 'content_filter');
	});
}
