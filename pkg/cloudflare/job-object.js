// The Durable Object that owns one job run through Queues.
import {DurableObject} from 'cloudflare:workers';
import {evaluateVote, finishSection, finishVote, planSection, planVote} from '../workerd.js';
import {checkLimits, describe, optionsError, resolveLimits} from './limits.js';
import {sendInBatches} from './queues.js';
import {errorData, failedOutcome, withRounds} from './shared.js';

const CHUNK_CHARS = 500_000;
const MAX_KEYS_PER_CALL = 128;

// How often a failed queue send is tried again: after 1 s, doubling up to 60 s, for 10
// attempts in all (about 4 minutes) before the unsent calls are recorded as failed.
const SEND_RETRY = Object.freeze({attempts: 10, baseDelayMs: 1000, maxDelayMs: 60_000});

function chunks(list, size) {
	const out = [];
	for (let i = 0; i < list.length; i += size) {
		out.push(list.slice(i, i + size));
	}

	return out;
}

/**
A Durable Object that owns one job run through Queues. It records each outcome once by
its key, so a redelivered message does not count twice. It enqueues subtasks once
their dependencies are recorded, stops a vote's samples once the vote is settled,
reports progress, and merges or tallies in an alarm when the last outcome arrives.
Subclass it and implement `jobOptions(payload)` (the section or vote options,
providers included) and `jobQueue()` (the Queue binding the consumer reads).
*/
export class JobObject extends DurableObject {
	#job = null;
	#payload;
	#plan;
	#options;
	#outcomes = new Map();
	#closed = new Map();
	#queued = new Set();
	#open = new Set();
	#outbox = new Map();
	#flushing;
	#dependents = new Map();
	#subtaskByKey = new Map();

	constructor(ctx, env) {
		super(ctx, env);
		ctx.blockConcurrencyWhile(() => this.#load());
	}

	/** Builds the options of the job's `section` or `vote` run from the payload given to startJob. */
	jobOptions(_payload) {
		throw new TypeError(`${this.constructor.name}.jobOptions(payload) is not implemented; return the section or vote options for the payload`);
	}

	/** Returns the Queue binding that the consumer (consumeQueueBatch) reads. */
	jobQueue() {
		throw new TypeError(`${this.constructor.name}.jobQueue() is not implemented; return the Queue binding, such as this.env.TASKS`);
	}

	/**
	Returns how a failed queue send is retried: `attempts` sends in all, the first retry
	after `baseDelayMs`, each later one after twice the delay before, at most
	`maxDelayMs`. Override it to change the policy.
	*/
	sendRetry() {
		return SEND_RETRY;
	}

	#sendRetryPolicy() {
		const policy = {...SEND_RETRY, ...this.sendRetry()};
		for (const [key, min] of [['attempts', 1], ['baseDelayMs', 0], ['maxDelayMs', 0]]) {
			if (!Number.isInteger(policy[key]) || policy[key] < min) {
				throw optionsError(TypeError, `sendRetry().${key}`, `expected an integer of at least ${min}, got ${describe(policy[key])}`);
			}
		}

		return policy;
	}

	async #load() {
		const meta = await this.ctx.storage.get('meta');
		if (!meta) {
			return;
		}

		this.#job = meta;
		this.#payload = await this.#getChunked('payload');
		this.#prepare();
		const storage = this.ctx.storage;
		const [outcomes, closed, queued, outbox] = await Promise.all(['o:', 'c:', 'q:', 'x:'].map(prefix => storage.list({prefix})));
		const recorded = [...outcomes.entries()].sort((a, b) => a[1].n - b[1].n);
		for (const [key, value] of recorded) {
			this.#outcomes.set(key.slice(2), value.outcome);
		}

		for (const [key, value] of closed) {
			this.#closed.set(key.slice(2), value);
		}

		for (const key of queued.keys()) {
			const name = key.slice(2);
			this.#queued.add(name);
			if (!this.#outcomes.has(name) && !this.#closed.has(name)) {
				this.#open.add(name);
			}
		}

		for (const [key, value] of outbox) {
			this.#outbox.set(key.slice(2), value);
		}
	}

	async #putChunked(name, value) {
		const text = JSON.stringify(value);
		const parts = {};
		const pieces = Math.max(1, Math.ceil(text.length / CHUNK_CHARS));
		for (let i = 0; i < pieces; i++) {
			parts[`${name}:${i}`] = text.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
		}

		parts[`${name}:n`] = pieces;
		for (const group of chunks(Object.entries(parts), MAX_KEYS_PER_CALL)) {
			// eslint-disable-next-line no-await-in-loop
			await this.ctx.storage.put(Object.fromEntries(group));
		}
	}

	async #getChunked(name) {
		const pieces = await this.ctx.storage.get(`${name}:n`);
		if (pieces === undefined) {
			return undefined;
		}

		const keys = Array.from({length: pieces}, (_, i) => `${name}:${i}`);
		let text = '';
		for (const group of chunks(keys, MAX_KEYS_PER_CALL)) {
			// eslint-disable-next-line no-await-in-loop
			const values = await this.ctx.storage.get(group);
			text += group.map(key => values.get(key)).join('');
		}

		return JSON.parse(text);
	}

	#prepare() {
		this.#options = this.jobOptions(this.#payload);
		this.#plan = this.#job.kind === 'section' ? planSection(this.#options) : planVote(this.#options);
		if (this.#job.kind === 'section') {
			for (const subtask of this.#plan.subtasks) {
				this.#subtaskByKey.set(subtask.key, subtask);
				for (const dep of subtask.dependsOn) {
					const list = this.#dependents.get(dep) ?? [];
					list.push(subtask);
					this.#dependents.set(dep, list);
				}
			}
		}
	}

	async #saveMeta() {
		await this.ctx.storage.put('meta', this.#job);
	}

	/**
	Starts the job (see startJob). Resolves to its status, or to `{started: false,
	error}` with the error as data when the options or the limits are invalid.
	*/
	async start({job, kind, payload, limits} = {}) {
		if (this.#job) {
			return {...this.status(), started: false};
		}

		let resolved;
		try {
			if (kind !== 'section' && kind !== 'vote') {
				throw optionsError(TypeError, 'kind', `expected "section" or "vote", got ${describe(kind)}`);
			}

			resolved = resolveLimits(limits);
		} catch (error) {
			return {started: false, error: errorData(error)};
		}

		this.#job = {job, kind, limits: resolved, state: 'running', stopped: false, settled: false, winner: null, decidedAfter: null, recordCount: 0, duplicates: 0, redelivered: 0, sendFailures: 0, rounds: [], startedAt: Date.now(), finishedAt: null};
		this.#payload = payload;
		try {
			this.#prepare();
			checkLimits(this.#plan, {engine: 'queues', limits: resolved, job});
			this.#sendRetryPolicy();
		} catch (error) {
			this.#job = null;
			this.#dependents.clear();
			this.#subtaskByKey.clear();
			return {started: false, error: errorData(error)};
		}

		const first = kind === 'section'
			? this.#plan.subtasks.filter(subtask => subtask.dependsOn.length === 0).map(subtask => subtask.key)
			: this.#plan.samples.map(sample => sample.key);
		if (kind === 'vote') {
			this.#job.rounds.push({round: 1, samples: this.#plan.samples.map(sample => sample.index), startedMs: 0});
		}

		await this.#putChunked('payload', payload);
		await this.#enqueue(first);
		await this.#saveMeta();
		await this.#flush();
		return {...this.status(), started: true};
	}

	/** Queues keys durably (in the outbox) before sending them. */
	async #enqueue(keys) {
		const entries = {};
		for (const key of keys) {
			this.#queued.add(key);
			this.#open.add(key);
			this.#outbox.set(key, {job: this.#job.job, key});
			entries[`q:${key}`] = 1;
			entries[`x:${key}`] = {job: this.#job.job, key};
		}

		for (const group of chunks(Object.entries(entries), MAX_KEYS_PER_CALL)) {
			// eslint-disable-next-line no-await-in-loop
			await this.ctx.storage.put(Object.fromEntries(group));
		}
	}

	/**
	Sends the outbox, one flush at a time, so no message is sent twice from here. A failed
	send does not reject: it is tried again from an alarm (see sendRetry), and once the
	attempts are used up, the calls of the unsent messages are recorded as failed, so the
	job still finishes.
	*/
	#flush() {
		if (this.#outbox.size === 0 || this.#flushing) {
			return this.#flushing ?? Promise.resolve();
		}

		this.#flushing = (async () => {
			try {
				// Yields first, so that the promise is stored before the loop can end.
				await Promise.resolve();
				while (this.#outbox.size > 0) {
					const entries = [...this.#outbox.entries()].slice(0, this.#job.limits.sendBatchSize);
					try {
						// eslint-disable-next-line no-await-in-loop
						await sendInBatches(this.jobQueue(), entries.map(([, body]) => body), this.#job.limits);
					} catch (error) {
						// eslint-disable-next-line no-await-in-loop
						if (await this.#retrySendLater(error)) {
							return;
						}

						// The loop goes on with the messages that the failures queued.
						// eslint-disable-next-line no-await-in-loop
						await this.#failUnsent(entries.map(([key]) => key), error);
						continue;
					}

					for (const [key] of entries) {
						this.#outbox.delete(key);
					}

					// eslint-disable-next-line no-await-in-loop
					await this.ctx.storage.delete(entries.map(([key]) => `x:${key}`));
					if (this.#job.sendFailures > 0) {
						this.#job.sendFailures = 0;
						// eslint-disable-next-line no-await-in-loop
						await this.#saveMeta();
					}
				}
			} finally {
				this.#flushing = undefined;
			}
		})();
		return this.#flushing;
	}

	/**
	Counts a failed send and schedules the next attempt from an alarm. Resolves to false
	when the attempts are used up, or the error is a message above `limits.messageBytes`,
	which no retry can send.
	*/
	async #retrySendLater(error) {
		const policy = this.#sendRetryPolicy();
		this.#job.sendFailures = (this.#job.sendFailures ?? 0) + 1;
		await this.#saveMeta();
		const failures = this.#job.sendFailures;
		const message = error?.message ?? String(error);
		if (error?.code === 'INVALID_OPTIONS' || failures >= policy.attempts) {
			console.error(`job ${this.#job.job}: sending queued messages failed ${failures} times in a row (the policy allows ${policy.attempts} attempts), so their calls are recorded as failed: ${message}`);
			return false;
		}

		const delayMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * (2 ** (failures - 1)));
		console.error(`job ${this.#job.job}: sending ${this.#outbox.size} queued messages failed (attempt ${failures} of ${policy.attempts}), retrying in ${delayMs} ms from an alarm: ${message}`);
		await this.#schedule(Date.now() + delayMs);
		return true;
	}

	/** Records the calls of messages that could not be sent as failed, with the send error. */
	async #failUnsent(keys, error) {
		const data = errorData(error);
		const outcome = failedOutcome({...data, message: `the job's queue message for this call could not be sent (${this.#job.sendFailures} failed attempts in a row): ${data.message}`}, {});
		for (const key of keys) {
			this.#outbox.delete(key);
		}

		await this.ctx.storage.delete(keys.map(key => `x:${key}`));
		for (const key of keys) {
			if (!this.#outcomes.has(key) && !this.#closed.has(key)) {
				// eslint-disable-next-line no-await-in-loop
				await this.#store(key, outcome);
			}
		}

		await this.#finishIfComplete();
	}

	async #schedule(at) {
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > at) {
			await this.ctx.storage.setAlarm(at);
		}
	}

	/** Pending work: keys queued but neither recorded nor closed. */
	#pending() {
		return [...this.#open];
	}

	#isComplete() {
		if (this.#pending().length > 0) {
			return false;
		}

		if (this.#job.kind === 'vote') {
			return this.#job.settled || this.#job.voteDone === true;
		}

		return this.#job.stopped || this.#outcomes.size + this.#closed.size === this.#plan.subtasks.length;
	}

	async #close(key, reason) {
		this.#closed.set(key, reason);
		this.#open.delete(key);
		await this.ctx.storage.put(`c:${key}`, reason);
	}

	/**
	Decides whether the consumer runs the call for `key`: not when its outcome is
	recorded, the vote is settled, or fail-fast stopped the job. A refused key is closed
	as cancelled. For a subtask, resolves with its dependencies' outputs.
	*/
	async claim(key) {
		if (!this.#job) {
			return {run: false, reason: 'unknown job'};
		}

		if (this.#outcomes.has(key) || this.#closed.has(key)) {
			this.#job.redelivered++;
			await this.#saveMeta();
			return {run: false, reason: 'recorded'};
		}

		if (!this.#queued.has(key)) {
			return {run: false, reason: 'not queued'};
		}

		if (this.#job.settled || this.#job.stopped || this.#job.state !== 'running') {
			await this.#close(key, 'cancelled');
			await this.#afterChange();
			return {run: false, reason: this.#job.settled ? 'settled' : 'stopped'};
		}

		if (this.#job.kind === 'vote') {
			return {run: true, index: Number(key.slice('sample-'.length))};
		}

		const subtask = this.#subtaskByKey.get(key);
		const outputs = Object.fromEntries(subtask.dependsOn.map(dep => [dep, this.#outcomes.get(`subtask-${dep}`)?.text ?? '']));
		return {run: true, id: subtask.id, dependsOn: subtask.dependsOn, outputs};
	}

	/** Returns what a consumer needs to run this job's calls. */
	describe() {
		if (!this.#job) {
			return null;
		}

		return {job: this.#job.job, kind: this.#job.kind, payload: this.#payload, retry: this.#plan.retry, limits: this.#job.limits};
	}

	/**
	Records the outcome of `key` once. Resolves to `{recorded: true}`, or `{recorded:
	false, duplicate: true}` when the key has an outcome already.
	*/
	async record(key, outcome) {
		if (!this.#job) {
			throw new Error(`record(${JSON.stringify(key)}): this Durable Object has no job; start it with startJob first`);
		}

		if (outcome === null || typeof outcome !== 'object' || !['ok', 'failed', 'cancelled'].includes(outcome.status)) {
			throw optionsError(TypeError, 'outcome', `expected an outcome from runSubtask or runSample, got ${describe(outcome)}`);
		}

		if (this.#outcomes.has(key) || this.#closed.has(key)) {
			this.#job.duplicates++;
			await this.#saveMeta();
			return {recorded: false, duplicate: true};
		}

		if (!this.#queued.has(key)) {
			throw optionsError(RangeError, 'key', `${JSON.stringify(key)} was never queued by job ${JSON.stringify(this.#job.job)}`);
		}

		await this.#store(key, outcome);
		await this.#afterChange();
		return {recorded: true};
	}

	/** Stores the outcome of a queued key that has none, and releases or evaluates what follows from it. */
	async #store(key, outcome) {
		// A sample that finishes after the vote was settled counts as cancelled, as in an
		// in-process vote. Its usage is kept.
		const stored = this.#job.kind === 'vote' && this.#job.settled ? {...outcome, status: 'cancelled', error: null} : outcome;
		const n = this.#job.recordCount++;
		this.#outcomes.set(key, stored);
		this.#open.delete(key);
		await this.ctx.storage.put({[`o:${key}`]: {outcome: stored, n}, meta: this.#job});
		if (this.#job.kind === 'section') {
			await this.#release(key, stored);
		} else if (!this.#job.settled) {
			await this.#evaluate();
		}
	}

	/** Queues the dependents of a recorded subtask whose dependencies are all recorded. */
	async #release(key, outcome) {
		const subtask = this.#subtaskByKey.get(key);
		if (outcome.status !== 'ok' && subtask.required && this.#plan.failure === 'fail-fast') {
			this.#job.stopped = true;
			await this.#saveMeta();
			return;
		}

		const ready = [];
		const skip = [];
		const visit = id => {
			for (const dependent of this.#dependents.get(id) ?? []) {
				const deps = dependent.dependsOn.map(dep => `subtask-${dep}`);
				if (!deps.every(dep => this.#outcomes.has(dep) || this.#closed.has(dep))) {
					continue;
				}

				if (this.#queued.has(dependent.key) || this.#closed.has(dependent.key) || skip.includes(dependent.key)) {
					continue;
				}

				if (deps.every(dep => this.#outcomes.get(dep)?.status === 'ok')) {
					ready.push(dependent.key);
				} else {
					// finishSection reports it as skipped, with the dependency that failed.
					skip.push(dependent.key);
					this.#closed.set(dependent.key, 'skipped');
					visit(dependent.id);
				}
			}
		};

		visit(subtask.id);
		for (const group of chunks(skip, MAX_KEYS_PER_CALL)) {
			// eslint-disable-next-line no-await-in-loop
			await this.ctx.storage.put(Object.fromEntries(group.map(item => [`c:${item}`, 'skipped'])));
		}

		if (!this.#job.stopped) {
			await this.#enqueue(ready);
		}
	}

	#voteOutcomes() {
		return [...this.#outcomes.entries()].map(([key, outcome]) => ({...outcome, index: Number(key.slice('sample-'.length))}));
	}

	/** Evaluates the vote, and queues the samples that evaluateVote returns as next. */
	async #evaluate() {
		const pending = this.#pending().map(key => Number(key.slice('sample-'.length)));
		const verdict = evaluateVote(this.#options, this.#voteOutcomes(), pending);
		if (verdict.settled) {
			this.#job.settled = true;
			this.#job.winner = verdict.winner;
			this.#job.decidedAfter = this.#outcomes.size;
			this.#job.decidedAt = Date.now();
		}

		if (verdict.done) {
			this.#job.voteDone = true;
		}

		if (!verdict.settled && verdict.next.length > 0) {
			this.#job.rounds.push({round: this.#job.rounds.length + 1, samples: verdict.next, startedMs: Date.now() - this.#job.startedAt});
			await this.#enqueue(verdict.next.map(index => `sample-${index}`));
		}

		await this.#saveMeta();
	}

	/** Sends what was queued, and schedules the finish once nothing is left to run. */
	async #afterChange() {
		await this.#finishIfComplete();
		await this.#flush();
	}

	async #finishIfComplete() {
		if (this.#job.state === 'running' && this.#isComplete()) {
			this.#job.state = 'finishing';
			await this.#saveMeta();
			await this.#schedule(Date.now());
		}
	}

	/** Sends what is left in the outbox, and finishes the job once it is complete. */
	async alarm() {
		if (!this.#job) {
			return;
		}

		await this.#flush();
		if (this.#job.state === 'finishing') {
			await this.#finish();
		}
	}

	async #finish() {
		let result;
		try {
			if (this.#job.kind === 'section') {
				result = {ok: true, report: await finishSection(this.#options, Object.fromEntries([...this.#outcomes].map(([key, outcome]) => [key.slice('subtask-'.length), outcome])))};
			} else {
				const cancelled = [...this.#closed.keys()].map(key => ({index: Number(key.slice('sample-'.length)), status: 'cancelled'}));
				result = {ok: true, report: withRounds(await finishVote(this.#options, [...this.#voteOutcomes(), ...cancelled]), this.#job.rounds)};
			}
		} catch (error) {
			const report = error?.report && this.#job.kind === 'vote' ? withRounds(error.report, this.#job.rounds) : error?.report;
			result = {ok: false, error: errorData(error), report: report ?? null};
		}

		await this.#putChunked('result', result);
		this.#job.state = 'done';
		this.#job.finishedAt = Date.now();
		await this.#saveMeta();
	}

	/** Returns the job's progress: counts by status, pending keys, redeliveries acknowledged without a call. */
	status() {
		if (!this.#job) {
			return {job: null, state: 'unknown'};
		}

		const statuses = {ok: 0, failed: 0, cancelled: 0, skipped: 0};
		for (const outcome of this.#outcomes.values()) {
			statuses[outcome.status]++;
		}

		for (const reason of this.#closed.values()) {
			statuses[reason]++;
		}

		const total = this.#job.kind === 'section' ? this.#plan.subtasks.length : this.#plan.maxSamples;
		const status = {
			job: this.#job.job,
			kind: this.#job.kind,
			state: this.#job.state,
			total,
			queued: this.#queued.size,
			recorded: this.#outcomes.size,
			...statuses,
			pending: this.#pending().length,
			duplicates: this.#job.duplicates,
			redelivered: this.#job.redelivered,
			startedAt: this.#job.startedAt,
			finishedAt: this.#job.finishedAt,
		};
		if (this.#job.kind === 'vote') {
			Object.assign(status, {settled: this.#job.settled, winner: this.#job.winner, decidedAfter: this.#job.decidedAfter, decidedAt: this.#job.decidedAt ?? null});
		}

		return status;
	}

	/**
	Returns the finished job: `{state: "done", ok: true, report}` with the same report as
	`section` or `vote`, `{state: "done", ok: false, error, report}` when the run failed
	(the error as plain data), or `{state}` while it runs.
	*/
	async result() {
		if (!this.#job || this.#job.state !== 'done') {
			return {state: this.#job?.state ?? 'unknown'};
		}

		return {state: 'done', ...await this.#getChunked('result')};
	}
}
