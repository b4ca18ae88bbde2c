// The API key never shows in an error message, error field or event. This holds also
// when a server echoes the key back as the error's `type` or `code`, in a JSON error
// body with any status or in an error event of a stream.

import assert from 'node:assert/strict';
import http from 'node:http';
import {after, before, test} from 'node:test';
import util from 'node:util';

import {anthropic, complete, openai} from 'parallel-task-executor';

const KEY = 'sk-proj-echoedkey0123456789';

let server;
let baseURL;

/** Returns the key the request carried, from either provider's auth header. */
function keyOf(request) {
	return request.headers['x-api-key'] ?? request.headers.authorization.replace('Bearer ', '');
}

/** Responds with the key as the error type or code, in the shape the request path selects. */
function respond(request, response) {
	const key = keyOf(request);
	const path = request.url;
	if (path.includes('/status-type/')) {
		response.writeHead(400, {'content-type': 'application/json'});
		response.end(JSON.stringify({error: {message: 'bad request', type: key}}));
	} else if (path.includes('/ok-code/')) {
		response.writeHead(200, {'content-type': 'application/json'});
		response.end(JSON.stringify({error: {message: 'failed', code: key}}));
	} else {
		response.writeHead(200, {'content-type': 'text/event-stream'});
		response.end(`event: error\ndata: ${JSON.stringify({type: 'error', error: {type: key, message: 'failed'}})}\n\n`);
	}
}

before(async () => {
	server = http.createServer((request, response) => {
		request.resume();
		request.on('end', () => {
			respond(request, response);
		});
	});
	await new Promise(resolve => {
		server.listen(0, '127.0.0.1', resolve);
	});
	baseURL = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
	await new Promise(resolve => {
		server.close(resolve);
	});
});

/** Runs one call that must reject and returns the error and every event as text. */
async function failedCall(provider) {
	const events = [];
	const error = await complete({
		provider,
		prompt: 'q',
		maxRetries: 0,
		onEvent(event) {
			events.push(event);
		},
	}).then(
		() => assert.fail('the call should reject'),
		caught => caught,
	);
	return {error, eventsText: JSON.stringify(events)};
}

const cases = [
	['HTTP 400 error type', () => openai({baseURL: `${baseURL}/status-type/v1`, model: 'm', apiKey: KEY})],
	['200 body error code', () => openai({baseURL: `${baseURL}/ok-code/v1`, model: 'm', apiKey: KEY})],
	['anthropic stream error type', () => anthropic({baseURL: `${baseURL}/stream/v1`, model: 'm', apiKey: KEY, maxTokens: 16, stream: true})],
];

for (const [name, makeProvider] of cases) {
	test(`key echoed as ${name} is redacted`, async () => {
		const {error, eventsText} = await failedCall(makeProvider());

		assert.equal(error.code, 'PROVIDER_ERROR');
		assert.ok(!error.message.includes(KEY), `the message shows the key: ${error.message}`);
		assert.ok(!String(error.providerType).includes(KEY), `providerType shows the key: ${error.providerType}`);
		assert.ok(!util.inspect(error, {depth: 10}).includes(KEY), 'the inspected error shows the key');
		assert.ok(!eventsText.includes(KEY), 'an event shows the key');
	});
}
