// Cloudflare's plan limits as data, and the check of a plan against them before a job
// starts.

import {byteLength} from './shared.js';

// Cloudflare's published limits: developers.cloudflare.com workers/platform/limits,
// queues/platform/limits and workflows/reference/limits (Workflows page updated
// 2026-06-15). Queue sizes are in decimal kilobytes, as Queues measure them.
// NOTE: serviceSubrequests is the 1,000 operations on Cloudflare services per
// invocation that the KV limits page states. The docs do not say whether Durable
// Object calls count toward it, so the presets assume that they do.
const FREE = Object.freeze({
	plan: 'free',
	steps: 1024,
	subrequests: 50,
	serviceSubrequests: 1000,
	connections: 6,
	queueBatchSize: 10,
	queueMaxRetries: 3,
	sendBatchSize: 100,
	sendBatchBytes: 256_000,
	messageBytes: 128_000,
	stepResultBytes: 1_048_576,
});

const PAID = Object.freeze({
	...FREE,
	plan: 'paid',
	steps: 10_000,
	subrequests: 10_000,
});

/** The limits of the Workers Free and Workers Paid plans, as `limits` presets. */
export const PLAN_LIMITS = Object.freeze({free: FREE, paid: PAID});

// Hard ceilings that no configuration raises.
const CEILINGS = {steps: 25_000, queueBatchSize: 100, queueMaxRetries: 100, sendBatchSize: 100, sendBatchBytes: 256_000, messageBytes: 128_000, stepResultBytes: 1_048_576, connections: 6};
const LIMIT_KEYS = Object.keys(FREE).filter(key => key !== 'plan');
const MAX_STEP_NAME = 256;

// Each message's share of a batch beyond its body, an estimate of the queue's framing.
const MESSAGE_OVERHEAD_BYTES = 100;

/** Returns the bytes a queue message with `body` counts against `messageBytes`: its JSON and the framing. */
export function messageSize(body) {
	return byteLength(body) + MESSAGE_OVERHEAD_BYTES;
}

export function optionsError(ErrorClass, path, message, fields = {}) {
	const error = new ErrorClass(`${path}: ${message}`);
	error.code = 'INVALID_OPTIONS';
	error.path = path;
	Object.assign(error, fields);
	return error;
}

export function describe(value) {
	if (value === null) {
		return 'null';
	}

	if (Array.isArray(value)) {
		return 'an array';
	}

	return typeof value === 'string' ? JSON.stringify(value) : `${typeof value} ${String(value)}`;
}

/**
Resolves `limits` ("free", "paid", or an object of overrides on a preset named by its
`plan`, "free" by default) into a complete limits object, checking every value.
*/
export function resolveLimits(limits = 'free', path = 'limits') {
	if (typeof limits === 'string') {
		const preset = PLAN_LIMITS[limits];
		if (!preset) {
			throw optionsError(TypeError, path, `expected "free", "paid" or an object, got ${describe(limits)}`);
		}

		return preset;
	}

	if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) {
		throw optionsError(TypeError, path, `expected "free", "paid" or an object, got ${describe(limits)}`);
	}

	const base = PLAN_LIMITS[limits.plan ?? 'free'];
	if (!base) {
		throw optionsError(TypeError, `${path}.plan`, `expected "free" or "paid", got ${describe(limits.plan)}`);
	}

	const resolved = {...base};
	for (const [key, value] of Object.entries(limits)) {
		if (key === 'plan' || value === undefined) {
			continue;
		}

		if (!LIMIT_KEYS.includes(key)) {
			throw optionsError(TypeError, `${path}.${key}`, `is not a limit; the limits are ${LIMIT_KEYS.join(', ')}`);
		}

		if (!Number.isInteger(value) || value < (key === 'queueMaxRetries' ? 0 : 1)) {
			throw optionsError(TypeError, `${path}.${key}`, `expected a positive integer, got ${describe(value)}`);
		}

		if (CEILINGS[key] !== undefined && value > CEILINGS[key]) {
			throw optionsError(RangeError, `${path}.${key}`, `${value} is above Cloudflare's maximum of ${CEILINGS[key].toLocaleString('en-US')}`);
		}

		resolved[key] = value;
	}

	return Object.freeze(resolved);
}

export function count(n) {
	return n.toLocaleString('en-US');
}

function planCalls(plan) {
	return plan.kind === 'section' ? plan.subtasks.length : plan.maxSamples;
}

function planKeys(plan) {
	return plan.kind === 'section' ? plan.subtasks.map(subtask => subtask.key) : Array.from({length: plan.maxSamples}, (_, index) => `sample-${index}`);
}

function describeKey(key) {
	if (!key.startsWith('subtask-')) {
		return key.replace('sample-', 'sample ');
	}

	const id = key.slice('subtask-'.length);
	return id.length > 40 ? `subtask ${JSON.stringify(id.slice(0, 40))}… (an id of ${count(id.length)} characters)` : `subtask ${JSON.stringify(id)}`;
}

/** Finds the plan's largest queue message `{job, key}` and throws when it is above `limits.messageBytes`. */
function checkMessageBytes(plan, job, resolved) {
	// A vote's largest key is its last sample's, so only that one is measured.
	const keys = plan.kind === 'section' ? planKeys(plan) : [`sample-${Math.max(0, plan.maxSamples - 1)}`];
	let largest = null;
	for (const key of keys) {
		const size = messageSize({job, key});
		if (largest === null || size > largest.size) {
			largest = {key, size};
		}
	}

	if (largest !== null && largest.size > resolved.messageBytes) {
		const jobText = job === '' ? 'before the job name is added' : `with the job name of ${count(job.length)} characters`;
		throw optionsError(RangeError, 'limits.messageBytes', `the queue message of ${describeKey(largest.key)} is ${count(largest.size)} bytes ${jobText}, above the ${count(resolved.messageBytes)} bytes a queue message may hold; ${plan.kind === 'section' ? 'shorten the subtask id or the job name' : 'shorten the job name'}`, {needed: largest.size, limit: resolved.messageBytes});
	}
}

/**
Checks a plan (from planSection or planVote) against the limits of an engine before
anything starts, and returns what the plan needs. Throws a RangeError with code
INVALID_OPTIONS whose `path` names the limit (`limits.steps`) when the plan does not fit.
For Queues, `job` is the job's name, which every queue message carries; without it the
message sizes are checked without the name.
*/
export function checkLimits(plan, {engine = 'workflow', limits, job = ''} = {}) {
	if (plan === null || typeof plan !== 'object' || (plan.kind !== 'section' && plan.kind !== 'vote')) {
		throw optionsError(TypeError, 'plan', 'expected the result of planSection or planVote');
	}

	if (engine !== 'workflow' && engine !== 'queues') {
		throw optionsError(TypeError, 'engine', `expected "workflow" or "queues", got ${describe(engine)}`);
	}

	if (typeof job !== 'string') {
		throw optionsError(TypeError, 'job', `expected the job's name as a string, got ${describe(job)}`);
	}

	const resolved = resolveLimits(limits);
	const on = `on the ${resolved.plan} plan`;
	const calls = planCalls(plan);
	const attempts = 1 + plan.retry.maxRetries;
	const finishCalls = plan.finishCalls ?? 0;
	if (engine === 'workflow') {
		const steps = calls + 1;
		if (steps > resolved.steps) {
			throw optionsError(RangeError, 'limits.steps', `the plan needs ${count(steps)} steps (${count(calls)} calls and the finishing step) but a Workflow instance may run ${count(resolved.steps)} ${on}; run it through Queues and a Durable Object (startJob), or raise limits.steps if your account allows more (up to ${count(CEILINGS.steps)} on the paid plan)`, {needed: steps, limit: resolved.steps});
		}

		const subrequests = (calls + finishCalls) * attempts;
		if (subrequests > resolved.subrequests) {
			throw optionsError(RangeError, 'limits.subrequests', `the plan may need ${count(subrequests)} subrequests (${count(calls + finishCalls)} calls × ${attempts} attempts with maxRetries ${plan.retry.maxRetries}) but a Workflow instance may make ${count(resolved.subrequests)} ${on}; lower maxRetries, run it through Queues and a Durable Object (startJob), or raise limits.subrequests (the paid plan allows up to 10 million)`, {needed: subrequests, limit: resolved.subrequests});
		}

		const longest = planKeys(plan).reduce((a, key) => (key.length > a.length ? key : a), '');
		if (longest.length > MAX_STEP_NAME) {
			throw optionsError(RangeError, 'subtasks', `the step name ${JSON.stringify(longest.slice(0, 40))}… is ${longest.length} characters, above the ${MAX_STEP_NAME} that Workflows allow; shorten the subtask id`);
		}

		return {engine, plan: resolved.plan, calls, steps, subrequests};
	}

	if (resolved.queueBatchSize > resolved.subrequests) {
		throw optionsError(RangeError, 'limits.queueBatchSize', `a batch of ${count(resolved.queueBatchSize)} messages makes up to ${count(resolved.queueBatchSize)} calls in one consumer invocation, but an invocation may make ${count(resolved.subrequests)} subrequests ${on}; set the consumer's max_batch_size and limits.queueBatchSize to ${count(resolved.subrequests)} or less`, {needed: resolved.queueBatchSize, limit: resolved.subrequests});
	}

	// Each message costs a claim and a record at the job's Durable Object.
	if (2 * resolved.queueBatchSize > resolved.serviceSubrequests) {
		throw optionsError(RangeError, 'limits.queueBatchSize', `a batch of ${count(resolved.queueBatchSize)} messages makes ${count(2 * resolved.queueBatchSize)} Durable Object calls in one invocation, but an invocation may make ${count(resolved.serviceSubrequests)} ${on}; lower max_batch_size and limits.queueBatchSize`, {needed: 2 * resolved.queueBatchSize, limit: resolved.serviceSubrequests});
	}

	if (plan.retry.maxRetries > resolved.queueMaxRetries) {
		throw optionsError(RangeError, 'limits.queueMaxRetries', `maxRetries ${plan.retry.maxRetries} needs ${plan.retry.maxRetries} redeliveries of a message, but the consumer's max_retries is ${resolved.queueMaxRetries}; raise max_retries and limits.queueMaxRetries, or lower maxRetries`, {needed: plan.retry.maxRetries, limit: resolved.queueMaxRetries});
	}

	// The Durable Object makes the finishing calls (a synthesis or judge calls) in one alarm.
	const finishSubrequests = finishCalls * attempts;
	if (finishSubrequests > resolved.subrequests) {
		throw optionsError(RangeError, 'limits.subrequests', `finishing the job may make ${count(finishSubrequests)} calls (${count(finishCalls)} × ${attempts} attempts) in one Durable Object alarm, but an invocation may make ${count(resolved.subrequests)} ${on}; lower maxRetries or raise limits.subrequests`, {needed: finishSubrequests, limit: resolved.subrequests});
	}

	checkMessageBytes(plan, job, resolved);

	return {engine, plan: resolved.plan, calls, messages: calls, batches: Math.ceil(calls / resolved.queueBatchSize), subrequestsPerInvocation: resolved.queueBatchSize};
}
