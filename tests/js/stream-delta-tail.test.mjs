// Streamed `delta` events add up to the whole reply, also when the provider has an API
// key. The stream holds back text that could be the start of the key until a later
// piece shows it is not; at the end of the stream that text goes out as a last delta.
// OpenAI and Anthropic keys start with "s", so replies ending in "s" ("Yes", "Paris")
// are the case that shows it.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {anthropic, complete, openai} from 'parallel-task-executor';

/** Returns a fetch that responds to every request with `events` as one server-sent event stream. */
function sseFetch(events) {
	return async () => {
		const body = events.map(event => `${event.type ? `event: ${event.type}\n` : ''}data: ${typeof event.data === 'string' ? event.data : JSON.stringify(event.data)}\n\n`).join('');
		return new Response(body, {status: 200, headers: {'content-type': 'text/event-stream'}});
	};
}

/** Builds OpenAI chat completion chunks that stream `text` one character at a time. */
function openaiEvents(text) {
	const chunk = (delta, finishReason = null) => ({data: {choices: [{index: 0, delta, finish_reason: finishReason}]}});
	return [
		chunk({role: 'assistant', content: ''}),
		...Array.from(text, character => chunk({content: character})),
		chunk({}, 'stop'),
		{data: '[DONE]'},
	];
}

/** Builds Anthropic Messages stream events that carry `text` in one delta. */
function anthropicEvents(text) {
	return [
		{type: 'message_start', data: {type: 'message_start', message: {id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], usage: {input_tokens: 1, output_tokens: 0}}}},
		{type: 'content_block_start', data: {type: 'content_block_start', index: 0, content_block: {type: 'text', text: ''}}},
		{type: 'content_block_delta', data: {type: 'content_block_delta', index: 0, delta: {type: 'text_delta', text}}},
		{type: 'content_block_stop', data: {type: 'content_block_stop', index: 0}},
		{type: 'message_delta', data: {type: 'message_delta', delta: {stop_reason: 'end_turn'}, usage: {output_tokens: 1}}},
		{type: 'message_stop', data: {type: 'message_stop'}},
	];
}

/** Runs one streamed call and returns the final text and the deltas joined. */
async function streamed(provider) {
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
	return {text: result.text, deltas: deltas.join('')};
}

for (const reply of ['Yes', 'Paris']) {
	test(`openai deltas end with the reply: ${reply}`, async () => {
		const provider = openai({baseURL: 'http://127.0.0.1:9/v1', model: 'm', apiKey: 'sk-proj-abcdefghijklmnop', stream: true, fetch: sseFetch(openaiEvents(reply))});
		const {text, deltas} = await streamed(provider);
		assert.equal(text, reply);
		assert.equal(deltas, reply);
	});
}

test('anthropic deltas end with the reply', async () => {
	const provider = anthropic({baseURL: 'http://127.0.0.1:9/v1', model: 'm', apiKey: 'sk-ant-api03-abcdefghijkl', maxTokens: 16, stream: true, fetch: sseFetch(anthropicEvents('Yes'))});
	const {text, deltas} = await streamed(provider);
	assert.equal(text, 'Yes');
	assert.equal(deltas, 'Yes');
});

test('deltas name their attempt across a retry', async () => {
	let calls = 0;
	const fetch = async () => {
		calls += 1;
		if (calls === 1) {
			// A stream that breaks off after some text: the attempt fails and is retried.
			let pulls = 0;
			const body = new ReadableStream({
				pull(controller) {
					pulls += 1;
					if (pulls === 1) {
						controller.enqueue(new TextEncoder().encode('data: {"choices":[{"index":0,"delta":{"content":"Par"}}]}\n\n'));
					} else {
						controller.error(new Error('connection reset'));
					}
				},
			});
			return new Response(body, {status: 200, headers: {'content-type': 'text/event-stream'}});
		}

		return sseFetch(openaiEvents('Paris'))();
	};

	const deltas = [];
	const provider = openai({baseURL: 'http://127.0.0.1:9/v1', model: 'm', stream: true, fetch});
	const result = await complete({
		provider,
		prompt: 'x',
		maxRetries: 1,
		retry: {baseDelayMs: 1, maxDelayMs: 2},
		onEvent(event) {
			if (event.type === 'delta') {
				deltas.push([event.attempt, event.text]);
			}
		},
	});
	assert.equal(result.text, 'Paris');
	assert.deepEqual(deltas.filter(([attempt]) => attempt === 1).map(([, text]) => text).join(''), 'Par');
	assert.deepEqual(deltas.filter(([attempt]) => attempt === 2).map(([, text]) => text).join(''), 'Paris');
});
