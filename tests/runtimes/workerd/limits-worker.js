// A worker for the Workers limits: the cap on open requests per invocation, the
// request budget, module-scope state shared by concurrent requests, and returning
// a Response while a cancelled voter is still in flight. __API_BASE__ is inlined by
// the test harness.
import {createLimiter, openai, vote} from 'parallel-task-executor';
import {CONNECTION_LIMIT_MESSAGE, createConnectionLimitedFetch} from './connection-limit-shim.js';

// Created once per isolate and used by every request, as a deployed worker would.
const provider = openai({baseURL: __API_BASE__, model: 'scripted', apiKey: 'sk-worker-limits-key'});
const sharedLimiter = createLimiter(4);

const PROMPT = 'What is 6*7? Answer with a number.';

/** Returns the fields of a thrown error that the tests check. */
function describeError(error) {
	return {
		name: error.name,
		code: error.code ?? null,
		message: error.message,
		errors: Array.isArray(error.errors) ? error.errors.map(inner => ({code: inner.code ?? null, message: inner.message})) : null,
		report: error.report ?? null,
	};
}

async function run(call) {
	try {
		return Response.json({ok: true, ...(await call())});
	} catch (error) {
		return Response.json({ok: false, error: describeError(error)});
	}
}

/** Runs ten voters with a concurrency far above the Workers cap. All ten must succeed. */
async function capped() {
	const result = await vote({provider, prompt: PROMPT, voters: 10, concurrency: 20, extract: 'number', rule: {atLeast: 10}});
	return {result};
}

/** Runs ten voters through the strict connection-limit fetch. */
async function throughShim() {
	const shim = createConnectionLimitedFetch();
	const shimProvider = openai({baseURL: __API_BASE__, model: 'scripted', apiKey: 'sk-worker-limits-key', fetch: shim.fetch});
	const result = await vote({
		provider: shimProvider,
		prompt: PROMPT,
		voters: 10,
		concurrency: 20,
		extract: 'number',
		rule: {atLeast: 10},
	});
	const attemptErrors = result.samples.flatMap(sample => sample.attempts.map(attempt => attempt.error?.message ?? null)).filter(Boolean);
	return {result, shim: shim.stats(), attemptErrors, limitMessage: CONNECTION_LIMIT_MESSAGE};
}

/**
Reproduces the deadlock that the connection rule breaks: ten requests start at once,
and every header is awaited before any body is read. The shim must cancel some.
*/
async function waitForAllHeaders() {
	const shim = createConnectionLimitedFetch();
	const request = () => shim.fetch(`${__API_BASE__}/chat/completions`, {
		method: 'POST',
		headers: {'content-type': 'application/json'},
		body: JSON.stringify({model: 'scripted', messages: [{role: 'user', content: PROMPT}]}),
	});
	const started = await Promise.allSettled(Array.from({length: 10}, () => request()));
	const responses = started.filter(outcome => outcome.status === 'fulfilled').map(outcome => outcome.value);
	const bodies = await Promise.allSettled(responses.map(response => response.text()));
	const errors = [...started, ...bodies].filter(outcome => outcome.status === 'rejected').map(outcome => outcome.reason.message);
	return {shim: shim.stats(), errors};
}

/** Runs ten voters against a server that fails every request, with a budget of 50 requests. */
async function budget() {
	await vote({
		provider,
		prompt: PROMPT,
		voters: 10,
		extract: 'number',
		maxRetries: 5,
		maxRequests: 50,
		retry: {baseDelayMs: 5, maxDelayMs: 20},
	});
	return {result: 'resolved'};
}

/** Runs three voters that share the module-scope provider and limiter with other requests. */
async function shared() {
	const result = await vote({provider, prompt: PROMPT, voters: 3, extract: 'number', limiter: sharedLimiter, rule: {atLeast: 3}});
	return {winner: result.winner, counts: result.counts};
}

/**
Decides on two of three voters and returns at once. The provider's fetch records each
request's signal, so the Response reports whether the losing request was aborted
before the worker returned.
*/
async function earlyReturn() {
	const signals = [];
	const recordingFetch = (input, init) => {
		signals.push(init.signal);
		return fetch(input, init);
	};

	const recordingProvider = openai({baseURL: __API_BASE__, model: 'scripted', apiKey: 'sk-worker-limits-key', fetch: recordingFetch});
	const result = await vote({provider: recordingProvider, prompt: PROMPT, voters: 3, extract: 'number', rule: {aheadBy: 2}});
	return {
		winner: result.winner,
		statuses: result.samples.map(sample => sample.status),
		requestsStarted: signals.length,
		abortedAtReturn: signals.map(signal => signal.aborted),
	};
}

const routes = {
	'/capped': capped,
	'/shim': throughShim,
	'/all-headers-first': waitForAllHeaders,
	'/budget': budget,
	'/shared': shared,
	'/early-return': earlyReturn,
};

export default {
	async fetch(request) {
		const handler = routes[new URL(request.url).pathname];
		return handler ? run(handler) : new Response('not found', {status: 404});
	},
};
