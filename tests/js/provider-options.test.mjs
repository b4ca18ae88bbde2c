// openai() and anthropic() reject, before any request, options that could never make a
// working request, with a TypeError or RangeError that names the option's path: a
// header name that is not an HTTP token, a header value with CR or LF, a baseURL with
// user:password@ (the password never appears in the message) or a fragment. A baseURL
// with a query string (Azure OpenAI's ?api-version=) keeps the query after the path.
// No request leaves the process: the providers that make a call use a recording
// `fetch`, and the others are only created.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {anthropic, complete, openai} from 'parallel-task-executor';

/** Returns a fetch that records each URL and responds with one OpenAI chat completion. */
function recordingFetch() {
	const urls = [];
	const fetch = async url => {
		urls.push(url);
		const body = {choices: [{index: 0, message: {role: 'assistant', content: 'ok'}, finish_reason: 'stop'}]};
		return new Response(JSON.stringify(body), {status: 200, headers: {'content-type': 'application/json'}});
	};

	return {fetch, urls};
}

/** Calls openai(options) and returns the INVALID_OPTIONS error it throws, or null. */
function creationError(options) {
	try {
		openai(options);
		return null;
	} catch (error) {
		return error;
	}
}

const BAD_HEADERS = [
	['a name with a space', {'X Trace': 'abc'}],
	['a name with a colon', {'X-Trace:': 'abc'}],
	['a value with CR LF', {'X-Trace': 'abc\r\nX-Injected: 1'}],
	['a value with a NUL', {'X-Trace': 'a\u0000b'}],
];

for (const [label, headers] of BAD_HEADERS) {
	test(`openai rejects a header with ${label}`, () => {
		const {fetch} = recordingFetch();
		const error = creationError({baseURL: 'http://127.0.0.1:9/v1', model: 'm', headers, fetch});
		assert.ok(error, 'openai() accepted the header');
		assert.equal(error.code, 'INVALID_OPTIONS');
		assert.match(error.path, /^openai\.headers/);
	});
}

test('openai rejects a baseURL with credentials', () => {
	// The Fetch standard forbids credentials in a request URL, so the global fetch
	// rejects every call to this baseURL.
	const error = creationError({baseURL: 'http://user:hunter2-secret@127.0.0.1:9/v1', model: 'm'});
	assert.ok(error, 'openai() accepted a baseURL with user:password@');
	assert.equal(error.code, 'INVALID_OPTIONS');
	assert.equal(error.path, 'openai.baseURL');
	assert.doesNotMatch(error.message, /hunter2-secret/);
});

test('openai rejects a baseURL with a fragment', () => {
	const error = creationError({baseURL: 'http://127.0.0.1:9/v1#section', model: 'm'});
	assert.ok(error, 'openai() accepted a baseURL with a fragment');
	assert.equal(error.code, 'INVALID_OPTIONS');
	assert.equal(error.path, 'openai.baseURL');
});

test('anthropic rejects a baseURL with credentials and a bad header', () => {
	const create = options => {
		try {
			anthropic({model: 'm', apiKey: 'sk-ant-test', ...options});
			return null;
		} catch (error) {
			return error;
		}
	};

	const credentials = create({baseURL: 'http://user:hunter2-secret@127.0.0.1:9'});
	assert.equal(credentials?.code, 'INVALID_OPTIONS');
	assert.equal(credentials.path, 'anthropic.baseURL');
	assert.doesNotMatch(credentials.message, /hunter2-secret/);
	const header = create({baseURL: 'http://127.0.0.1:9', headers: {'X-Trace': 'a\r\nb'}});
	assert.equal(header?.code, 'INVALID_OPTIONS');
	assert.match(header.path, /^anthropic\.headers/);
});

test('openai keeps a baseURL query after the path', async () => {
	const {fetch, urls} = recordingFetch();
	const baseURL = 'http://127.0.0.1:9/openai/deployments/d1?api-version=2024-10-21';
	await complete({provider: openai({baseURL, model: 'm', fetch}), prompt: 'x', maxRetries: 0});
	assert.equal(urls.length, 1);
	const url = new URL(urls[0]);
	assert.equal(url.pathname, '/openai/deployments/d1/chat/completions');
	assert.equal(url.searchParams.get('api-version'), '2024-10-21');
});
