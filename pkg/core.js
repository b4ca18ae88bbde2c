// The JavaScript API over the wasm core. It encodes options for the core, keeps API
// keys out of JS objects (providers hold only an id), and turns the core's plain
// error objects into Error instances. Every entry point (node.js, browser.js,
// workerd.js) loads the wasm module, then re-exports this file.
import * as wasm from './wasm/parallel_task_executor.js';

const MARKER = '\u0000';
const providerIds = new WeakMap();
const limiterIds = new WeakMap();

// Releases a provider's or limiter's id in the core once its JS object is collected.
const registry = typeof FinalizationRegistry === 'function'
	? new FinalizationRegistry(id => {
		try {
			wasm.releaseHandle(id);
		} catch {
			// The module may be gone already when the host shuts down.
		}
	})
	: undefined;

function isAbortSignal(value) {
	return typeof value.aborted === 'boolean'
		&& typeof value.addEventListener === 'function'
		&& typeof value.removeEventListener === 'function';
}

function isPlainObject(value) {
	const prototype = Object.getPrototypeOf(value);
	return prototype === Object.prototype || prototype === null;
}

// Encodes a value as JSON for the core. Values JSON cannot carry become marker
// objects, so the core can accept them (functions, signals, providers, limiters)
// or reject them by name (NaN, BigInt, class instances) instead of seeing null.
function encode(value) {
	value = guardOnEvent(value);
	const refs = [];
	const releases = [];
	const seen = new Set();

	const walk = item => {
		switch (typeof item) {
			case 'string':
			case 'boolean': {
				return item;
			}

			case 'number': {
				return Number.isFinite(item) ? item : {[MARKER]: ['num', String(item)]};
			}

			case 'bigint': {
				return {[MARKER]: ['bigint', item.toString()]};
			}

			case 'function': {
				refs.push(item);
				return {[MARKER]: ['fn', refs.length - 1]};
			}

			case 'symbol': {
				return {[MARKER]: ['symbol']};
			}

			case 'undefined': {
				return null;
			}

			default: {
				break;
			}
		}

		if (item === null) {
			return null;
		}

		if (providerIds.has(item)) {
			return {[MARKER]: ['provider', providerIds.get(item)]};
		}

		if (limiterIds.has(item)) {
			return {[MARKER]: ['limiter', limiterIds.get(item)]};
		}

		if (isAbortSignal(item)) {
			refs.push(childSignal(item, releases));
			return {[MARKER]: ['signal', refs.length - 1]};
		}

		if (seen.has(item)) {
			return {[MARKER]: ['circular']};
		}

		if (Array.isArray(item)) {
			seen.add(item);
			const out = item.map(element => walk(element));
			seen.delete(item);
			return out;
		}

		if (!isPlainObject(item)) {
			return {[MARKER]: ['object', item.constructor?.name ?? 'an object']};
		}

		seen.add(item);
		const out = {};
		for (const [key, element] of Object.entries(item)) {
			// `undefined` means "not set", like a missing key.
			if (element !== undefined) {
				out[key] = walk(element);
			}
		}

		seen.delete(item);
		return out;
	};

	const json = JSON.stringify(walk(value) ?? null);
	const release = () => {
		for (const done of releases) {
			done();
		}
	};

	return {json, refs, release};
}

// An async onEvent returns a promise the core never sees. Its rejection is caught
// here and thrown at the next event, where the core reports it once as a warning,
// instead of surfacing as an unhandled rejection (which ends a Node process).
function guardOnEvent(options) {
	if (options === null || typeof options !== 'object' || typeof options.onEvent !== 'function') {
		return options;
	}

	const handler = options.onEvent;
	let failure;
	const onEvent = event => {
		const result = handler(event);
		if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
			result.then(undefined, error => {
				failure ??= {error};
			});
		}

		if (failure !== undefined) {
			const {error} = failure;
			failure = undefined;
			throw error;
		}
	};

	return {...options, onEvent};
}

// Each caller's signal gets one listener, however many runs use it at once, because
// Node warns past 10 listeners on one signal. Each run gets a child signal that aborts
// with the same reason, and the last run using the signal removes the listener.
const fanOuts = new WeakMap();

function childSignal(parent, releases) {
	if (parent.aborted || typeof AbortController !== 'function') {
		return parent;
	}

	let fanOut = fanOuts.get(parent);
	if (!fanOut) {
		const children = new Set();
		const onAbort = () => {
			for (const child of children) {
				child.abort(parent.reason);
			}
		};

		fanOut = {children, onAbort};
		fanOuts.set(parent, fanOut);
		parent.addEventListener('abort', onAbort);
	}

	const child = new AbortController();
	fanOut.children.add(child);
	releases.push(() => {
		fanOut.children.delete(child);
		if (fanOut.children.size === 0 && fanOuts.get(parent) === fanOut) {
			parent.removeEventListener('abort', fanOut.onAbort);
			fanOuts.delete(parent);
		}
	});
	return child.signal;
}

const classes = {TypeError, RangeError, Error};

// A panic in the core is a bug. The module is built with panic=unwind, so the call
// that hit the panic rejects (or throws) wasm-bindgen's PanicError and the module
// stays usable. A trap the core cannot unwind from (out of memory, stack overflow)
// terminates the instance, and every later call throws "Module terminated".
// NOTE: calls pending when the instance terminates are not settled.
function isInternalFailure(raw) {
	return raw.name === 'PanicError'
		|| (typeof WebAssembly === 'object' && raw instanceof WebAssembly.RuntimeError)
		|| raw.message === 'Module terminated';
}

function internalError(raw) {
	const error = new Error(`parallel-task-executor failed internally (${raw.message}); this is a bug in the library, so please report it with the options of the call`, {cause: raw});
	error.code = 'INTERNAL_ERROR';
	return error;
}

// Builds an Error from the plain object the core rejects with.
function toError(raw) {
	if (raw instanceof Error) {
		return isInternalFailure(raw) ? internalError(raw) : raw;
	}

	if (raw === null || typeof raw !== 'object' || typeof raw.code !== 'string') {
		return new Error(String(raw));
	}

	const {class: className, message, hostCause, report, errors, cause, ...fields} = raw;
	const ErrorClass = classes[className] ?? Error;
	const innerErrors = Array.isArray(errors) ? errors.map(inner => toError(inner)) : undefined;
	const options = {};
	if (hostCause !== undefined) {
		options.cause = hostCause;
	} else if (cause !== undefined && cause !== null) {
		options.cause = toError(cause);
	} else if (innerErrors !== undefined && innerErrors.length > 0) {
		// ALL_FAILED and QUORUM_NOT_MET: the first failure is the cause, all are in `errors`.
		options.cause = innerErrors[0];
	}

	const error = new ErrorClass(message, options);
	Object.assign(error, fields);
	if (raw.code === 'ABORTED') {
		error.name = 'AbortError';
	}

	if (innerErrors !== undefined) {
		error.errors = innerErrors;
	}

	if (report !== undefined) {
		error.report = report;
	}

	return error;
}

function callSync(run, release) {
	try {
		return run();
	} catch (error) {
		throw toError(error);
	} finally {
		release?.();
	}
}

async function callAsync(run, release) {
	try {
		return JSON.parse(await run());
	} catch (error) {
		throw toError(error);
	} finally {
		release?.();
	}
}

/**
A provider: immutable configuration, safe to create once at module scope. Its API key
lives inside the wasm module and never shows in JSON.stringify or console.log.
*/
class Provider {
	constructor(id, info) {
		providerIds.set(this, id);
		registry?.register(this, id);
		Object.assign(this, info);
		Object.freeze(this);
	}

	toJSON() {
		return {...this};
	}

	[Symbol.for('nodejs.util.inspect.custom')]() {
		return `Provider ${JSON.stringify(this)}`;
	}
}

function makeProvider(kind, options, fn) {
	const {json, refs, release} = encode(options ?? {});
	const info = JSON.parse(callSync(() => wasm.createProvider(kind, json, refs, fn), release));
	const {id, ...publicInfo} = info;
	return new Provider(id, publicInfo);
}

/** An OpenAI-compatible chat completions provider. */
export function openai(options) {
	return makeProvider('openai', options);
}

/** An Anthropic Messages API provider. */
export function anthropic(options) {
	return makeProvider('anthropic', options);
}

/** A provider backed by a function `(request, { signal }) => ({ text, usage?, finishReason? })`. */
export function custom(fn, options) {
	return makeProvider('custom', options ?? {}, fn);
}

class Limiter {
	constructor(id, concurrency) {
		limiterIds.set(this, id);
		registry?.register(this, id);
		this.concurrency = concurrency;
		Object.freeze(this);
	}
}

/** A limit on open requests shared by every run it is passed to as `limiter`. */
export function createLimiter(concurrency) {
	if (typeof concurrency !== 'number' || !Number.isFinite(concurrency)) {
		const got = typeof concurrency === 'number' ? String(concurrency)
			: concurrency === undefined || concurrency === null ? String(concurrency)
				: typeof concurrency === 'bigint' ? 'a BigInt'
					: typeof concurrency === 'object' ? 'an object'
						: `a ${typeof concurrency}`;
		const error = new TypeError(`createLimiter(concurrency): expected a positive integer, got ${got}`);
		error.code = 'INVALID_OPTIONS';
		error.path = 'createLimiter(concurrency)';
		throw error;
	}

	const id = callSync(() => wasm.createLimiter(concurrency));
	return new Limiter(id, concurrency);
}

/** Runs one call with retries, timeout and abort. */
export function complete(options) {
	const {json, refs, release} = encode(options);
	return callAsync(() => wasm.complete(json, refs), release);
}

/** Runs subtasks in parallel (dependencies as a DAG) and merges their outputs. */
export function section(options) {
	const {json, refs, release} = encode(options);
	return callAsync(() => wasm.section(json, refs), release);
}

/** Samples the same task several times and aggregates the answers by a rule. */
export function vote(options) {
	const {json, refs, release} = encode(options);
	return callAsync(() => wasm.vote(json, refs), release);
}

/** Applies a voting rule to answers you already have, synchronously. */
export function aggregate(answers, options) {
	const encodedAnswers = encode(answers);
	const encodedOptions = encode(options ?? {});
	const refs = [...encodedAnswers.refs, ...encodedOptions.refs];
	const release = () => {
		encodedAnswers.release();
		encodedOptions.release();
	};

	// A function among the answers reaches the core as a marker, which rejects it with
	// its index and field; it is never called.
	return JSON.parse(callSync(() => wasm.aggregate(encodedAnswers.json, encodedOptions.json, refs), release));
}

/** Checks section options and returns the subtasks with their dependencies and phases, for a durable engine that runs one subtask at a time. */
export function planSection(options) {
	const {json, refs, release} = encode(options);
	return JSON.parse(callSync(() => wasm.planSection(json, refs), release));
}

/** Runs one subtask (with the run options' retries), its dependencies' outputs given as `{ [id]: text }`, and resolves to its outcome, plain data to store. */
export function runSubtask(options, id, outputs = {}) {
	const {json, refs, release} = encode(options);
	return callAsync(() => wasm.runSubtask(json, refs, String(id), JSON.stringify(outputs)), release);
}

/** Merges stored outcomes (`{ [id]: outcome }` or a list with ids) into the same report as `section`. */
/** Returns the INVALID_OPTIONS error for a missing `outcomes` argument, or null. */
function missingOutcomes(outcomes, expected) {
	if (outcomes !== undefined && outcomes !== null) {
		return null;
	}

	const error = new TypeError(`outcomes: is required; pass ${expected}, got ${String(outcomes)}`);
	error.code = 'INVALID_OPTIONS';
	error.path = 'outcomes';
	return error;
}

export function finishSection(options, outcomes) {
	const missing = missingOutcomes(outcomes, 'the stored outcomes, an array or an object keyed by subtask id');
	if (missing) {
		return Promise.reject(missing);
	}

	const {json, refs, release} = encode(options);
	return callAsync(() => wasm.finishSection(json, refs, JSON.stringify(outcomes)), release);
}

/** Checks vote options and returns the first round and limits, for a durable engine that runs one sample at a time. */
export function planVote(options) {
	const {json, refs, release} = encode(options);
	return JSON.parse(callSync(() => wasm.planVote(json, refs), release));
}

/** Runs one sample of a vote (with the run options' retries) and resolves to its outcome, plain data to store. */
export function runSample(options, index) {
	const {json, refs, release} = encode(options);
	return callAsync(() => wasm.runSample(json, refs, index), release);
}

/** Given the stored outcomes (in the order they finished) and the samples still running, says whether the vote is settled and which samples to run next. */
export function evaluateVote(options, outcomes, pending = []) {
	const missing = missingOutcomes(outcomes, 'the stored sample outcomes, an array in the order they finished');
	if (missing) {
		throw missing;
	}

	const {json, refs, release} = encode(options);
	return JSON.parse(callSync(() => wasm.evaluateVote(json, refs, JSON.stringify(outcomes), JSON.stringify(pending)), release));
}

/** Tallies stored outcomes into the same result as `vote`. */
export function finishVote(options, outcomes) {
	const missing = missingOutcomes(outcomes, 'the stored sample outcomes, an array in the order they finished');
	if (missing) {
		return Promise.reject(missing);
	}

	const {json, refs, release} = encode(options);
	return callAsync(() => wasm.finishVote(json, refs, JSON.stringify(outcomes)), release);
}

/** The smallest k for ahead-by-k voting that reaches `target` with voters of `accuracy`. */
export function aheadByFor(options) {
	const {json, release} = encode(options);
	return callSync(() => wasm.aheadByFor(json), release);
}

/** Counts of providers and limiters alive in the core (for leak checks). */
export function liveHandles() {
	return JSON.parse(wasm.liveHandles());
}

export * from './batch.js';
