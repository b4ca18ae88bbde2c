// Sectioning and voting inside a Cloudflare Workflow: one durable step per call.
import {evaluateVote, finishSection, finishVote, planSection, planVote, runSample, runSubtask} from '../workerd.js';
import {checkLimits, count, describe, optionsError, resolveLimits} from './limits.js';
import {byteLength, createGate, errorData, failedOutcome, isRetryable, narrowSection, settleCall, sleep, subtaskMap, toError, withRounds} from './shared.js';

const FINISH_STEP = 'finish';

// Marks an error thrown from a step, so that once the step's retries are exhausted it
// is distinguished from the engine's own errors. The outcome travels in the message,
// the only part of an error that Workflows store and replay.
const RETRY_MARK = 'parallel-task-executor step failed: ';

// Errors that end or pause the instance itself; they must reach the engine.
function isEngineError(error) {
	const message = String(error?.message ?? '');
	return !message.includes(RETRY_MARK)
		&& (message.startsWith('Aborting engine') || error?.name === 'WorkflowFatalError' || /The limit of \d+ steps has been reached/.test(message));
}

function outcomeFromStepError(error, label, attempts) {
	const message = String(error?.message ?? error);
	const at = message.indexOf(RETRY_MARK);
	if (at !== -1) {
		try {
			return JSON.parse(message.slice(at + RETRY_MARK.length));
		} catch {
			// A truncated message falls through to the plain failure below.
		}
	}

	return failedOutcome({code: 'PROVIDER_ERROR', message: `the step failed after ${attempts} attempts: ${message}`}, label);
}

function stepSettings(retry, config) {
	const settings = {retries: {limit: retry.maxRetries, delay: retry.baseDelayMs, backoff: 'exponential'}};
	if (config.timeout !== undefined) {
		settings.timeout = config.timeout;
	}

	return settings;
}

/**
Runs `call` (which resolves to an outcome and never rejects) as one durable step. A
retryable failure makes the step throw, so Workflows retry it with the step's backoff.
On the last attempt, known from the step context, the failed outcome becomes the
step's result instead. Without a step context, the exhausted step's error carries the
outcome in its message.
*/
async function durableCall(step, name, settings, retry, call, label) {
	try {
		return await step.do(name, settings, async context => {
			const outcome = await call();
			if (!isRetryable(outcome)) {
				return outcome;
			}

			const attempt = context?.attempt;
			const limit = context?.config?.retries?.limit ?? settings.retries.limit;
			if (attempt !== undefined && attempt > limit) {
				return outcome;
			}

			// Workflows wait delay × 2^(attempt - 1) before the next attempt; a longer
			// Retry-After is made up here, inside the step.
			const stepDelay = settings.retries.delay * (2 ** ((attempt ?? 1) - 1));
			const retryAfter = Math.min(outcome.error.retryAfterMs ?? 0, retry.maxRetryAfterMs);
			await sleep(retryAfter - stepDelay);
			throw new Error(RETRY_MARK + JSON.stringify(outcome));
		});
	} catch (error) {
		if (isEngineError(error)) {
			throw error;
		}

		return outcomeFromStepError(error, label, settings.retries.limit + 1);
	}
}

function workflowSetup(plan, config) {
	const limits = resolveLimits(config.limits);
	checkLimits(plan, {engine: 'workflow', limits});
	const concurrency = config.concurrency ?? limits.connections;
	if (!Number.isInteger(concurrency) || concurrency < 1) {
		throw optionsError(TypeError, 'concurrency', `expected a positive integer, got ${describe(concurrency)}`);
	}

	return {limits, gate: createGate(concurrency), settings: stepSettings(plan.retry, config)};
}

/** Runs the finishing step: a merge or tally, retried like a call when its own call fails. */
async function finishStep(step, settings, limits, finish) {
	const result = await step.do(FINISH_STEP, settings, async context => {
		let value;
		try {
			value = {ok: true, report: await finish()};
		} catch (error) {
			const attempt = context?.attempt ?? settings.retries.limit + 1;
			if (error?.retryable === true && attempt <= settings.retries.limit) {
				throw error;
			}

			value = {ok: false, error: errorData(error), report: error?.report ?? null};
		}

		const size = byteLength(value);
		if (size > limits.stepResultBytes) {
			return {ok: false, error: errorData(optionsError(RangeError, 'limits.stepResultBytes', `the finished result is ${count(size)} bytes, above the ${count(limits.stepResultBytes)} bytes a Workflow step may return; run jobs with large outputs through Queues and a Durable Object (startJob)`)), report: null};
		}

		return value;
	});
	if (!result.ok) {
		throw toError(result.error, result.report);
	}

	return result.report;
}

/**
Runs a sectioning job inside a Workflow's `run(event, step)`: one `step.do` per
subtask, named by the plan's stable key, started once its dependencies' steps have
results (independent ones in parallel), then a `finish` step that merges with
finishSection. Resolves to the same report as `section`, or rejects like it.
*/
export async function runSectionWorkflow(step, options, config = {}) {
	const plan = planSection(options);
	const {limits, gate, settings} = workflowSetup(plan, config);
	const subtasksById = subtaskMap(options);
	const byId = new Map(plan.subtasks.map(subtask => [subtask.id, subtask]));
	const results = new Map();
	let stopped = false;

	const outcomeOf = subtask => {
		if (!results.has(subtask.id)) {
			results.set(subtask.id, (async () => {
				const deps = await Promise.all(subtask.dependsOn.map(id => outcomeOf(byId.get(id))));
				// A subtask left without an outcome is reported by finishSection as
				// skipped (a dependency did not succeed) or cancelled (fail-fast).
				if (deps.some(outcome => outcome?.status !== 'ok') || stopped) {
					return null;
				}

				const outputs = Object.fromEntries(subtask.dependsOn.map((id, i) => [id, deps[i].text]));
				const label = {id: subtask.id};
				const outcome = await gate(() => (stopped ? null : durableCall(step, subtask.key, settings, plan.retry, () => settleCall(runSubtask(narrowSection(options, subtasksById, subtask.id, subtask.dependsOn), subtask.id, outputs), label), label)));
				// NOTE: after a replay, fail-fast may start a subtask that the first run
				// skipped, because cached steps resolve in a different order.
				if (outcome?.status === 'failed' && subtask.required && plan.failure === 'fail-fast') {
					stopped = true;
				}

				return outcome;
			})());
		}

		return results.get(subtask.id);
	};

	const outcomes = await Promise.all(plan.subtasks.map(subtask => outcomeOf(subtask)));
	const recorded = Object.fromEntries(plan.subtasks.flatMap((subtask, i) => (outcomes[i] ? [[subtask.id, outcomes[i]]] : [])));
	return finishStep(step, settings, limits, () => finishSection({...options, maxRetries: 0}, recorded));
}

/**
Runs a vote inside a Workflow's `run(event, step)`: one `step.do` per sample (named
`sample-<index>`), in rounds; after each round evaluateVote returns the samples to run
next, so a settled vote starts nothing more. A `finish` step tallies with finishVote.
Resolves to the same result as `vote`, or rejects like it.
*/
export async function runVoteWorkflow(step, options, config = {}) {
	const plan = planVote(options);
	const {limits, gate, settings} = workflowSetup(plan, config);
	const callOptions = {...options, maxRetries: 0};
	const outcomes = [];
	const rounds = [];
	let next = plan.samples.map(sample => sample.index);
	while (next.length > 0) {
		rounds.push({round: rounds.length + 1, samples: next, startedMs: null});
		// eslint-disable-next-line no-await-in-loop
		const finished = await Promise.all(next.map(index => gate(() => {
			const label = {index};
			return durableCall(step, `sample-${index}`, settings, plan.retry, async () => {
				const outcome = await settleCall(runSample(callOptions, index), label);
				// The finish time is stored with the step, so a replay reads the same order.
				return {...outcome, order: Date.now()};
			}, label);
		})));
		// The order the samples finished in decides rules such as aheadBy; ties go by index.
		finished.sort((a, b) => (a.order ?? 0) - (b.order ?? 0) || a.index - b.index);
		outcomes.push(...finished);
		const verdict = evaluateVote(options, outcomes, []);
		next = verdict.done ? [] : verdict.next;
	}

	try {
		return withRounds(await finishStep(step, settings, limits, () => finishVote(callOptions, outcomes)), rounds);
	} catch (error) {
		if (error?.report) {
			error.report = withRounds(error.report, rounds);
		}

		throw error;
	}
}
