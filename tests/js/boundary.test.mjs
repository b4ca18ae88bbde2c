// The JS/wasm boundary in Node. It covers how fetch is found and the shape of
// results (plain objects, null for absent values). It also covers 64-bit integers
// and unset options on the way in, API keys kept out of every printable form, and
// the Error classes thrown.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import util from 'node:util';
import {after, before, beforeEach, test} from 'node:test';
import {aggregate, anthropic, complete, custom, openai, section, vote} from 'parallel-task-executor';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const NO_FETCH_SCRIPT = fileURLToPath(new URL('../runtimes/node/no-fetch.mjs', import.meta.url));
const API_KEY = 'sk-boundary-test-4f1c9a7e';

let server;

before(async () => {
	server = await startScriptedServer();
});

after(async () => {
	await server?.close();
});

beforeEach(() => {
	server.reset();
	server.setDefault(openaiOk('42'));
});

function provider(options = {}) {
	return openai({baseURL: `${server.url}/v1`, model: 'scripted', apiKey: API_KEY, ...options});
}

/**
Lists the paths inside `value` that hold `undefined`, a Map or Set, or an object
that is not a plain object or array.
*/
function findNonPlain(value, at = '$', found = []) {
	if (value === undefined) {
		found.push(`${at} is undefined`);
		return found;
	}

	if (value === null || typeof value !== 'object') {
		return found;
	}

	if (Array.isArray(value)) {
		if (Object.getPrototypeOf(value) !== Array.prototype) {
			found.push(`${at} is an array subclass`);
		}

		for (const [index, item] of value.entries()) {
			findNonPlain(item, `${at}[${index}]`, found);
		}

		return found;
	}

	if (value instanceof Map || value instanceof Set) {
		found.push(`${at} is a ${value.constructor.name}`);
		return found;
	}

	if (Object.getPrototypeOf(value) !== Object.prototype) {
		found.push(`${at} is an instance of ${value.constructor?.name ?? 'a class'}`);
		return found;
	}

	for (const key of Object.keys(value)) {
		findNonPlain(value[key], `${at}.${key}`, found);
	}

	return found;
}

/** Returns the rejection of `promise`, and fails the test if it resolves. */
async function rejectionOf(promise) {
	try {
		await promise;
	} catch (error) {
		return error;
	}

	assert.fail('expected a rejection, but the call resolved');
}

/** Returns the error that `run` throws, and fails the test if it returns. */
function thrownBy(run) {
	try {
		run();
	} catch (error) {
		return error;
	}

	assert.fail('expected an exception, but the call returned');
}

test('missing global fetch rejects naming fetch', async () => {
	const savedFetch = globalThis.fetch;
	const countingFetch = (...args) => savedFetch(...args);
	let single;
	let all;
	let withOwnFetch;
	try {
		delete globalThis.fetch;
		single = await rejectionOf(complete({provider: provider(), prompt: 'Say hi'}));
		all = await rejectionOf(vote({provider: provider(), prompt: 'Say hi', voters: 3}));
		withOwnFetch = await complete({provider: provider({fetch: countingFetch}), prompt: 'Say hi'});
	} finally {
		globalThis.fetch = savedFetch;
	}

	assert.ok(single instanceof Error);
	assert.equal(typeof single.code, 'string');
	assert.match(single.message, /no fetch function/);
	assert.match(single.message, /`fetch` option/);

	assert.equal(all.code, 'ALL_FAILED');
	assert.equal(all.errors.length, 3);
	for (const error of all.errors) {
		assert.match(error.message, /fetch/);
	}

	assert.deepEqual(all.report.samples.map(sample => sample.status), ['failed', 'failed', 'failed']);

	// Passing a fetch, as the message recommends, works without a global one.
	assert.equal(withOwnFetch.text, '42');
	assert.equal(server.requests().length, 1);
});

test('host without fetch loads the package and rejects', async () => {
	const run = await new Promise(resolve => {
		execFile(process.execPath, [NO_FETCH_SCRIPT], {timeout: 30_000}, (error, stdout, stderr) => {
			resolve({code: error ? error.code ?? 1 : 0, stdout, stderr});
		});
	});

	assert.equal(run.code, 0, `the child exited with ${run.code}: ${run.stderr}${run.stdout}`);
	const rejection = JSON.parse(run.stdout);
	assert.equal(rejection.isError, true);
	assert.equal(typeof rejection.code, 'string');
	assert.match(rejection.message, /fetch/);
	assert.match(rejection.message, /pass one/);
});

test('provider fetch replaces the global fetch', async () => {
	const savedFetch = globalThis.fetch;
	let providerCalls = 0;
	let globalCalls = 0;
	const countingFetch = (...args) => {
		providerCalls += 1;
		return savedFetch(...args);
	};

	let result;
	try {
		globalThis.fetch = (...args) => {
			globalCalls += 1;
			return savedFetch(...args);
		};

		result = await vote({provider: provider({fetch: countingFetch}), prompt: 'What is 6*7?', voters: 3, rule: {atLeast: 3}});
	} finally {
		globalThis.fetch = savedFetch;
	}

	assert.equal(providerCalls, 3);
	assert.equal(globalCalls, 0);
	assert.equal(result.winner, '42');
	assert.equal(server.requests().length, 3);
});

test('vote result is a plain object', async () => {
	const result = await vote({provider: provider(), prompt: 'What is 6*7?', voters: 3, extract: 'number', rule: {atLeast: 3}});

	assert.equal(result.counts['42'], 3);
	assert.deepEqual(Object.keys(result.counts), ['42']);
	assert.equal(Object.getPrototypeOf(result.counts), Object.prototype);
	assert.equal(JSON.stringify(result.counts), '{"42":3}');
	assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
	assert.ok(Object.keys(result).includes('tally'));
	assert.equal(result.tally[0].votes, 3);
	assert.deepEqual(findNonPlain(result), []);
});

test('results hold null, never undefined or Map', async () => {
	const events = [];
	const onEvent = event => {
		events.push(event);
	};

	server.script([
		{match: {contains: 'Fail here'}, respond: {status: 400, body: {error: {message: 'bad request', type: 'invalid_request_error'}}}},
		{match: {contains: 'Say 41'}, respond: openaiOk('41')},
	]);
	const completion = await complete({provider: provider(), prompt: 'Say hi', onEvent});
	const sectioned = await section({
		provider: provider(),
		subtasks: [
			{id: 'a', prompt: 'Say hi'},
			{id: 'b', prompt: 'Fail here', required: false},
			{id: 'c', prompt: 'Use {{a}}'},
		],
		failure: 'settle',
		onEvent,
	});
	const voted = await vote({
		provider: provider(),
		prompt: 'What is 6*7?',
		voters: [{name: 'plain'}, {name: 'other', prompt: 'Say 41'}, {name: 'third'}],
		extract: 'number',
		onEvent,
	});
	const aggregated = aggregate(['42', {answer: '42', voter: 'b'}, {text: 'The answer is 41.'}], {extract: 'number'});
	const failure = await rejectionOf(complete({provider: provider(), prompt: 'Fail here'}));

	// The runs produced the absent values the walk is about.
	assert.equal(completion.attempts[0].error, null);
	assert.equal(sectioned.results.find(result => result.id === 'b').status, 'failed');
	assert.equal(aggregated.usage, null);
	assert.ok(voted.samples.every(sample => sample.error === null));

	for (const [name, value] of Object.entries({completion, sectioned, voted, aggregated, report: failure.report, events})) {
		assert.deepEqual(findNonPlain(value), [], `${name} holds a non-plain value`);
	}

	// Every sample and subtask has the same keys, whether the value is set or not.
	const sampleKeys = voted.samples.map(sample => Object.keys(sample).sort().join());
	assert.equal(new Set(sampleKeys).size, 1);
	const resultKeys = sectioned.results.map(result => Object.keys(result).sort().join());
	assert.equal(new Set(resultKeys).size, 1);
});

test('raw provider objects come back plain', async () => {
	const reply = openaiOk('42', {
		usage: {
			prompt_tokens: 9,
			completion_tokens: 1,
			total_tokens: 10,
			completion_tokens_details: {reasoning_tokens: 0, accepted_prediction_tokens: 0},
			prompt_tokens_details: {cached_tokens: 3},
		},
	});
	const logprobs = {content: [{token: '42', logprob: -0.01, bytes: [52, 50], top_logprobs: [{token: '42', logprob: -0.01, bytes: [52, 50]}]}]};
	reply.body.choices[0].logprobs = logprobs;
	server.setDefault(reply);

	const result = await complete({provider: provider(), prompt: 'Say 42'});

	assert.deepEqual(result.usage.raw.completion_tokens_details, {reasoning_tokens: 0, accepted_prediction_tokens: 0});
	assert.equal(result.usage.raw.prompt_tokens_details.cached_tokens, 3);
	assert.equal(Object.getPrototypeOf(result.usage.raw.completion_tokens_details), Object.prototype);
	assert.deepEqual(result.logprobs, logprobs);
	assert.ok(Array.isArray(result.logprobs.content[0].top_logprobs));
	assert.deepEqual(findNonPlain(result), []);
});

test('custom result with Map or BigInt is rejected', async () => {
	const cases = [
		['a BigInt', {text: '42', usage: {input_tokens: 5n}}, /BigInt at key "input_tokens"/],
		['a Map', {text: '42', usage: new Map([['input_tokens', 5]])}, /Map at key "usage"/],
		['a Set', {text: '42', tags: new Set(['a'])}, /Set at key "tags"/],
	];
	for (const [label, returned, pattern] of cases) {
		// eslint-disable-next-line no-await-in-loop
		const error = await rejectionOf(complete({provider: custom(async () => returned), prompt: 'Say hi'}));
		assert.ok(error instanceof Error, label);
		assert.equal(error.code, 'PROVIDER_ERROR', label);
		assert.match(error.message, pattern, label);
		assert.match(error.message, /JSON cannot represent/, label);
	}

	// Plain values, and objects with a toJSON method, still pass.
	const plain = await complete({provider: custom(async () => ({text: '42', usage: {input_tokens: 5, output_tokens: 1}, at: new Date(0)})), prompt: 'Say hi'});
	assert.equal(plain.text, '42');
	assert.deepEqual(plain.usage.raw, {input_tokens: 5, output_tokens: 1});
});

test('seed above 2^53 is rejected, not rounded', async () => {
	const cases = [
		['2 ** 53 + 1', 2 ** 53 + 1],
		['a BigInt', 10n],
		['a BigInt above 2^53', (2n ** 53n) + 1n],
	];
	for (const [label, seed] of cases) {
		const error = thrownBy(() => provider({seed}));
		assert.ok(error instanceof Error, label);
		assert.equal(error.code, 'INVALID_OPTIONS', label);
		assert.ok(error instanceof RangeError || error instanceof TypeError, `${label}: ${error.constructor.name}`);
		assert.match(error.message, /seed/, label);
		assert.match(error.message, /MAX_SAFE_INTEGER/, label);
	}

	for (const [label, seed] of cases) {
		// eslint-disable-next-line no-await-in-loop
		const error = await rejectionOf(complete({provider: provider(), prompt: 'Say hi', seed}));
		assert.equal(error.code, 'INVALID_OPTIONS', label);
		assert.match(error.message, /seed/, label);
	}

	assert.equal(server.requests().length, 0);
});

test('undefined and null options are not sent', async () => {
	await complete({provider: provider({temperature: undefined, maxTokens: null, seed: null}), prompt: 'Say hi', temperature: undefined});

	const [record] = server.requests();
	assert.equal(record.bodyText.includes('null'), false, record.bodyText);
	assert.equal(Object.hasOwn(record.body, 'temperature'), false);
	assert.equal(Object.hasOwn(record.body, 'max_tokens'), false);
	assert.equal(Object.hasOwn(record.body, 'max_completion_tokens'), false);
	assert.equal(Object.hasOwn(record.body, 'seed'), false);
	assert.equal(Object.hasOwn(record.body, 'top_p'), false);
});

test('NaN option is rejected naming topP', () => {
	const error = thrownBy(() => provider({temperature: undefined, maxTokens: null, topP: Number.NaN}));

	assert.ok(error instanceof TypeError);
	assert.equal(error.code, 'INVALID_OPTIONS');
	assert.match(error.message, /topP/);
	assert.match(error.message, /NaN/);
	assert.equal(server.requests().length, 0);
});

test('provider never shows its API key', async () => {
	const headerSecret = 'sk-header-secret-77aa';
	const openaiProvider = provider({headers: {'X-Custom-Auth': headerSecret}});
	const anthropicProvider = anthropic({baseURL: server.url, model: 'scripted', apiKey: API_KEY, maxTokens: 16});

	for (const candidate of [openaiProvider, anthropicProvider]) {
		const forms = [
			JSON.stringify(candidate),
			util.inspect(candidate, {depth: Infinity, showHidden: true}),
			util.format('%o', candidate),
			String(candidate),
			JSON.stringify(Object.values(candidate)),
			JSON.stringify({wrapped: candidate}),
		];
		for (const form of forms) {
			assert.equal(form.includes(API_KEY), false, form);
			assert.equal(form.includes(headerSecret), false, form);
		}
	}

	// A server that echoes the key in its error body does not get it into the error.
	server.setDefault({status: 401, body: {error: {message: `Incorrect API key provided: ${API_KEY}`, type: 'invalid_request_error'}}});
	const error = await rejectionOf(complete({provider: openaiProvider, prompt: 'Say hi'}));
	assert.equal(error.status, 401);
	assert.equal(server.requests()[0].headers.authorization, `Bearer ${API_KEY}`);
	for (const form of [error.message, error.stack, util.inspect(error, {depth: Infinity}), JSON.stringify(error)]) {
		assert.equal(form.includes(API_KEY), false, form);
	}
});

test('errors carry code and the JS class', async () => {
	const wrongType = await rejectionOf(vote({provider: provider(), prompt: 'Say hi', voters: 3, concurrency: 'many'}));
	assert.ok(wrongType instanceof TypeError);
	assert.equal(wrongType.code, 'INVALID_OPTIONS');
	assert.match(wrongType.message, /concurrency/);

	const outOfRange = await rejectionOf(vote({provider: provider(), prompt: 'Say hi', voters: 3, concurrency: 0}));
	assert.ok(outOfRange instanceof RangeError);
	assert.equal(outOfRange.code, 'INVALID_OPTIONS');
	assert.match(outOfRange.message, /concurrency/);

	const temperature = thrownBy(() => provider({temperature: 5}));
	assert.ok(temperature instanceof RangeError);
	assert.match(temperature.message, /temperature/);

	const notAFunction = thrownBy(() => custom('not a function'));
	assert.ok(notAFunction instanceof TypeError);
	assert.equal(notAFunction.code, 'INVALID_OPTIONS');

	const controller = new AbortController();
	const reason = new Error('the user left');
	controller.abort(reason);
	const aborted = await rejectionOf(vote({provider: provider(), prompt: 'Say hi', voters: 3, signal: controller.signal}));
	assert.ok(aborted instanceof Error);
	assert.equal(aborted.code, 'ABORTED');
	assert.equal(aborted.name, 'AbortError');
	assert.equal(aborted.cause, reason);

	server.setDefault({status: 400, body: {error: {message: 'bad param', type: 'invalid_request_error'}}});
	const providerError = await rejectionOf(complete({provider: provider(), prompt: 'Say hi'}));
	assert.ok(providerError instanceof Error);
	assert.equal(providerError.code, 'PROVIDER_ERROR');
	assert.equal(providerError.status, 400);
	assert.equal(providerError.retryable, false);
	assert.equal(providerError.providerMessage, 'bad param');
	assert.ok(providerError.report);
});
