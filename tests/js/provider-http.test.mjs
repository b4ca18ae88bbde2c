// Providers over real HTTP in Node, against the scripted server: request bodies,
// response shapes, streams cut at every byte, error classification, rate-limit
// pacing, usage and cost, and secrets.
import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import util from 'node:util';
import {
	anthropic, complete, custom, openai, section, vote,
} from 'parallel-task-executor';
import {
	anthropicError, anthropicOk, anthropicStream, cutAt, html502, openaiError, openaiOk, openaiStream, startScriptedServer,
} from '../support/scripted-server.mjs';
import {installLoopbackGuard} from '../support/loopback-guard.mjs';

let server;
let uninstallGuard;

before(async () => {
	uninstallGuard = installLoopbackGuard();
	server = await startScriptedServer();
});

after(async () => {
	await server.close();
	uninstallGuard();
});

const base = () => `${server.url}/v1`;

test('openai stream cut at every byte gives the same text', async () => {
	const stream = openaiStream('Caf\u00E9 \u{1F600} 42', {pieces: ['Caf', '\u00E9 \u{1F600}', ' 42'], firstChunkEmptyChoices: true});
	const whole = Buffer.concat(stream.chunks.map(chunk => Buffer.from(chunk)));
	const provider = openai({baseURL: base(), model: 'm', stream: true});
	for (let offset = 0; offset <= whole.length; offset += 1) {
		server.reset();
		server.setDefault({...cutAt(stream, [offset]), chunkDelayMs: 2});
		// eslint-disable-next-line no-await-in-loop
		const result = await complete({provider, prompt: 'q'});
		assert.equal(result.text, 'Caf\u00E9 \u{1F600} 42', `cut at byte ${offset}`);
		assert.equal(result.finishReason, 'stop');
		assert.equal(result.usage.inputTokens, 9);
	}

	server.setDefault(null);
});

test('anthropic stream cut at every byte gives the same text', async () => {
	const stream = anthropicStream('na\u00EFve \u{1F600} answer', {pieces: ['na', '\u00EFve \u{1F600}', ' answer']});
	const whole = Buffer.concat(stream.chunks.map(chunk => Buffer.from(chunk)));
	const provider = anthropic({baseURL: base(), model: 'c', apiKey: 'sk-ant-test-000000', maxTokens: 16, stream: true});
	for (let offset = 0; offset <= whole.length; offset += 3) {
		server.reset();
		server.setDefault({...cutAt(stream, [offset, offset + 5]), chunkDelayMs: 2});
		// eslint-disable-next-line no-await-in-loop
		const result = await complete({provider, prompt: 'q'});
		assert.equal(result.text, 'na\u00EFve \u{1F600} answer', `cut at byte ${offset}`);
	}

	server.setDefault(null);
});

test('openai request body carries every configured field', async () => {
	server.reset();
	server.setDefault(openaiOk('ok'));
	const provider = openai({
		baseURL: base(),
		model: 'gpt-test',
		apiKey: 'sk-body-test-123',
		temperature: 0.3,
		topP: 0.8,
		maxTokens: 21,
		seed: 5,
		extraBody: {logprobs: true, top_logprobs: 2},
		headers: {'X-Title': 'tests'},
	});
	await complete({provider, system: 'be brief', prompt: 'hello'});
	const [record] = server.requests();
	assert.equal(record.path, '/v1/chat/completions');
	assert.equal(record.body.model, 'gpt-test');
	assert.deepEqual(record.body.messages, [{role: 'system', content: 'be brief'}, {role: 'user', content: 'hello'}]);
	assert.equal(record.body.temperature, 0.3);
	assert.equal(record.body.top_p, 0.8);
	assert.equal(record.body.max_tokens, 21);
	assert.equal(record.body.seed, 5);
	assert.equal(record.body.logprobs, true);
	assert.equal(record.body.top_logprobs, 2);
	assert.equal(record.headers.authorization, 'Bearer sk-body-test-123');
	assert.equal(record.headers['x-title'], 'tests');
	assert.equal(record.headers['content-type'], 'application/json');
	server.setDefault(null);
});

test('openai streaming asks for usage', async () => {
	server.reset();
	server.setDefault(openaiStream('hi'));
	await complete({provider: openai({baseURL: base(), model: 'm', stream: true}), prompt: 'x'});
	const [record] = server.requests();
	assert.equal(record.body.stream, true);
	assert.deepEqual(record.body.stream_options, {include_usage: true});
	server.setDefault(null);
});

test('anthropic request has the required headers and max_tokens', async () => {
	server.reset();
	server.setDefault(anthropicOk('hello'));
	const provider = anthropic({baseURL: base(), model: 'claude-test', apiKey: 'sk-ant-head-1234', maxTokens: 77, version: '2023-06-01'});
	const result = await complete({provider, system: 'sys', prompt: 'hi'});
	assert.equal(result.text, 'hello');
	const [record] = server.requests();
	assert.equal(record.path, '/v1/messages');
	assert.equal(record.headers['x-api-key'], 'sk-ant-head-1234');
	assert.equal(record.headers['anthropic-version'], '2023-06-01');
	assert.equal(record.headers['anthropic-dangerous-direct-browser-access'], undefined);
	assert.equal(record.body.max_tokens, 77);
	assert.equal(record.body.system, 'sys');
	assert.deepEqual(record.body.messages, [{role: 'user', content: 'hi'}]);
	server.setDefault(null);
});

test('non-JSON 502 is retried and reported with a short excerpt', async () => {
	server.reset();
	server.setDefault(html502());
	const provider = openai({baseURL: base(), model: 'm'});
	const error = await complete({provider, prompt: 'x', maxRetries: 2, retry: {baseDelayMs: 5}}).then(() => null, error_ => error_);
	assert.ok(error instanceof Error);
	assert.equal(error.code, 'PROVIDER_ERROR');
	assert.equal(error.status, 502);
	assert.equal(error.retryable, true);
	assert.equal(error.providerMessage, '502 Bad Gateway');
	assert.ok(error.bodyExcerpt.length <= 201, error.bodyExcerpt);
	assert.doesNotMatch(error.message, /SyntaxError|Unexpected token/);
	assert.equal(error.report.attempts.length, 3);
	assert.equal(server.requests().length, 3);
	server.setDefault(null);
});

test('client errors are not retried and keep the provider message', async () => {
	server.reset();
	server.setDefault(openaiError(400, 'bad param', {type: 'invalid_request_error'}));
	const error = await complete({provider: openai({baseURL: base(), model: 'm'}), prompt: 'x'}).then(() => null, error_ => error_);
	assert.equal(error.status, 400);
	assert.equal(error.retryable, false);
	assert.equal(error.providerType, 'invalid_request_error');
	assert.equal(error.providerMessage, 'bad param');
	assert.equal(server.requests().length, 1);
	server.setDefault(null);
});

test('every retryable status is retried and no other is', async () => {
	const provider = openai({baseURL: base(), model: 'm'});
	for (const status of [408, 409, 429, 500, 502, 503, 504, 529]) {
		server.reset();
		server.script([{match: {nth: 1}, respond: openaiError(status, 'try again')}]);
		server.setDefault(openaiOk('fine'));
		// eslint-disable-next-line no-await-in-loop
		const result = await complete({provider, prompt: 'x', retry: {baseDelayMs: 1, maxDelayMs: 5}});
		assert.equal(result.text, 'fine', `status ${status}`);
		assert.equal(server.requests().length, 2, `status ${status} is retried once`);
	}

	for (const status of [400, 401, 403, 404, 422]) {
		server.reset();
		server.setDefault(openaiError(status, 'no'));
		// eslint-disable-next-line no-await-in-loop
		const error = await complete({provider, prompt: 'x', retry: {baseDelayMs: 1}}).then(() => null, error_ => error_);
		assert.equal(error?.status, status);
		assert.equal(server.requests().length, 1, `status ${status} is not retried`);
	}

	server.setDefault(null);
});

test('anthropic overloaded error type is retried', async () => {
	server.reset();
	server.script([{match: {nth: 1}, respond: anthropicError(529, 'overloaded_error', 'Overloaded')}]);
	server.setDefault(anthropicOk('done'));
	const provider = anthropic({baseURL: base(), model: 'c', apiKey: 'sk-ant-529-000000', maxTokens: 8});
	const result = await complete({provider, prompt: 'x', retry: {baseDelayMs: 1}});
	assert.equal(result.text, 'done');
	assert.equal(result.attempts[0].error.providerType, 'overloaded_error');
	server.setDefault(null);
});

test('rate-limit headers pace the next request', async () => {
	server.reset();
	server.script([{match: {nth: 1}, respond: openaiOk('a', {headers: {'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '800ms'}})}]);
	server.setDefault(openaiOk('b'));
	const provider = openai({baseURL: base(), model: 'm'});
	const events = [];
	const report = await section({
		provider,
		concurrency: 1,
		subtasks: [{id: 'a', prompt: 'a'}, {id: 'b', prompt: 'b'}],
		onEvent: event => events.push(event.type),
	});
	assert.equal(report.results[1].status, 'ok');
	const [first, second] = server.requests();
	assert.ok(second.receivedAt - first.finishedAt >= 750, `second request came ${second.receivedAt - first.finishedAt} ms after the first ended`);
	assert.ok(events.includes('rate-limited'));
	server.setDefault(null);
});

test('usage and cost are summed per call and per run', async () => {
	server.reset();
	server.setDefault(openaiOk('x', {usage: {prompt_tokens: 100, completion_tokens: 10, total_tokens: 110, completion_tokens_details: {reasoning_tokens: 4}}}));
	const provider = openai({baseURL: base(), model: 'priced', prices: {input: 2, output: 10}});
	const report = await section({provider, subtasks: [{id: 'a', prompt: 'a'}, {id: 'b', prompt: 'b'}]});
	assert.equal(report.usage.inputTokens, 200);
	assert.equal(report.usage.outputTokens, 20);
	assert.ok(Math.abs(report.usage.costUsd - ((200 * 2) + (20 * 10)) / 1e6) < 1e-12, String(report.usage.costUsd));
	assert.equal(report.results[0].usage.raw.completion_tokens_details.reasoning_tokens, 4);
	server.setDefault(null);
});

test('a token budget is never exceeded', async () => {
	server.reset();
	server.setDefault(openaiOk('x', {usage: {prompt_tokens: 10, completion_tokens: 50, total_tokens: 60}}));
	const provider = openai({baseURL: base(), model: 'm', maxTokens: 50});
	const subtasks = Array.from({length: 10}, (_, i) => ({id: `s${i}`, prompt: 'short'}));
	const report = await section({provider, subtasks, concurrency: 1, budget: {tokens: 250}});
	const ok = report.results.filter(result => result.status === 'ok').length;
	const failed = report.results.filter(result => result.status === 'failed');
	assert.ok(report.usage.inputTokens + report.usage.outputTokens <= 250);
	assert.equal(ok + failed.length, 10);
	assert.ok(failed.length > 0);
	assert.equal(failed[0].error.code, 'BUDGET_EXCEEDED');
	assert.equal(server.requests().length, ok);
	server.setDefault(null);
});

test('budget without maxTokens is rejected before any request', async () => {
	server.reset();
	const provider = openai({baseURL: base(), model: 'm'});
	await assert.rejects(complete({provider, prompt: 'x', budget: {tokens: 100}}), error => {
		assert.equal(error.code, 'INVALID_OPTIONS');
		assert.match(error.message, /maxTokens/);
		return true;
	});
	assert.equal(server.requests().length, 0);
});

test('custom provider errors carry retryable and retryAfterMs', async () => {
	let calls = 0;
	const provider = custom(async () => {
		calls += 1;
		if (calls === 1) {
			throw Object.assign(new Error('busy'), {retryable: true, retryAfterMs: 120});
		}

		return {text: 'fine', usage: {inputTokens: 3, outputTokens: 1}};
	});
	const started = performance.now();
	const result = await complete({provider, prompt: 'x'});
	assert.equal(result.text, 'fine');
	assert.ok(performance.now() - started >= 115);
	assert.equal(result.attempts.length, 2);
	assert.equal(result.usage.inputTokens, 3);

	const thrown = new Error('fatal');
	const error = await complete({provider: custom(() => {
		throw thrown;
	}), prompt: 'x'}).then(() => null, error_ => error_);
	assert.equal(error.code, 'PROVIDER_ERROR');
	assert.equal(error.cause, thrown);
	assert.equal(error.retryable, false);
});

test('an API key never appears in anything the library produces', async () => {
	const key = 'sk-SENTINEL-7f3a9c2e1b5d';
	const produced = [];
	const originalLog = console.log;
	const originalError = console.error;
	const originalWarn = console.warn;
	const logged = [];
	console.log = (...args) => logged.push(util.format(...args));
	console.error = console.log;
	console.warn = console.log;
	try {
		server.reset();
		server.script([
			{match: {contains: 'echo-error'}, respond: openaiError(401, `Incorrect API key provided: ${key}`, {type: 'invalid_request_error'})},
			{match: {contains: 'echo-html'}, respond: {status: 500, headers: {'content-type': 'text/html'}, body: `<html><title>Boom ${key}</title></html>`}},
			{match: {contains: 'echo-stream'}, respond: openaiStream(`your key is ${key} indeed`, {pieces: ['your key is sk-SENT', 'INEL-7f3a9c2e1b5d indeed']})},
		]);
		const provider = openai({baseURL: base(), model: 'm', apiKey: key});
		const streaming = openai({baseURL: base(), model: 'm', apiKey: key, stream: true});
		const onEvent = event => produced.push(event);
		for (const run of [
			() => complete({provider, prompt: 'echo-error', onEvent}),
			() => complete({provider, prompt: 'echo-html', maxRetries: 1, retry: {baseDelayMs: 1}, onEvent}),
			() => complete({provider: streaming, prompt: 'echo-stream', onEvent}),
			() => vote({provider, prompt: 'echo-error', voters: 3, onEvent}),
			() => section({provider: streaming, subtasks: [{id: 'a', prompt: 'echo-stream'}, {id: 'b', prompt: 'echo-error'}], onEvent}),
		]) {
			// eslint-disable-next-line no-await-in-loop
			produced.push(await run().catch(error => ({error, message: error.message, report: error.report, fields: {...error}})));
		}

		produced.push(provider, streaming, String(provider), util.inspect(provider, {showHidden: true, depth: 5}));
	} finally {
		console.log = originalLog;
		console.error = originalError;
		console.warn = originalWarn;
	}

	const everything = util.inspect(produced, {depth: 20, showHidden: true}) + JSON.stringify(produced) + logged.join('\n');
	assert.ok(!everything.includes(key), 'the key leaked');
	assert.ok(!everything.includes('sk-SENTINEL'), 'part of the key leaked');
	assert.ok(everything.includes('[REDACTED]'), 'the echoed key was replaced');
	server.setDefault(null);
});
