// The Queues path: sending job messages in batches, starting a job on its Durable
// Object, and the consumer that runs each message's call.
import {createLimiter, runSample, runSubtask} from '../workerd.js';
import {PLAN_LIMITS, count, describe, messageSize, optionsError, resolveLimits} from './limits.js';
import {failedOutcome, isRetryable, narrowSection, settleCall, subtaskMap, toError} from './shared.js';

/**
Sends message bodies with `queue.sendBatch` in batches within `limits.sendBatchSize`
messages and `limits.sendBatchBytes` bytes. Rejects with a RangeError naming
`limits.messageBytes` when one body is too large to send. Resolves to the number of
batches sent.
*/
export async function sendInBatches(queue, bodies, limits = 'free') {
	const resolved = resolveLimits(limits);
	const batches = [];
	let current = [];
	let bytes = 0;
	for (const body of bodies) {
		const size = messageSize(body);
		if (size > resolved.messageBytes) {
			throw optionsError(RangeError, 'limits.messageBytes', `a message of ${count(size)} bytes is above the ${count(resolved.messageBytes)} bytes a queue message may hold`);
		}

		if (current.length === resolved.sendBatchSize || bytes + size > resolved.sendBatchBytes) {
			batches.push(current);
			current = [];
			bytes = 0;
		}

		current.push({body, contentType: 'json'});
		bytes += size;
	}

	if (current.length > 0) {
		batches.push(current);
	}

	for (const batch of batches) {
		// eslint-disable-next-line no-await-in-loop
		await queue.sendBatch(batch);
	}

	return batches.length;
}

export function jobStub(namespace, job) {
	if (typeof job !== 'string' || job === '') {
		throw optionsError(TypeError, 'job', `expected a non-empty string that names the job, got ${describe(job)}`);
	}

	return namespace.get(namespace.idFromName(job));
}

/**
Starts a job on its Durable Object (one object per job, named by `job`): checks the
plan and its limits, stores the payload, and enqueues the first subtasks or samples.
Starting a job that exists already changes nothing. Resolves to the job's status.
*/
export async function startJob(namespace, job, {kind, payload, limits} = {}) {
	const status = await jobStub(namespace, job).start({job, kind, payload, limits});
	if (status.error) {
		// Workers RPC (workerd 2026-04-26) keeps only an error's name and message, so the
		// object returns the error's fields as data.
		throw toError(status.error);
	}

	return status;
}

function retryDelaySeconds(outcome, attempt, retry) {
	const cap = Math.min(retry.maxDelayMs, retry.baseDelayMs * (2 ** (attempt - 1)));
	const backoff = Math.random() * cap;
	const wait = Math.max(backoff, Math.min(outcome.error?.retryAfterMs ?? 0, retry.maxRetryAfterMs));
	return Math.min(86_400, Math.ceil(wait / 1000));
}

function isJobMessage(body) {
	return body !== null && typeof body === 'object' && typeof body.job === 'string' && typeof body.key === 'string';
}

/**
Handles a batch of job messages in a queue consumer. For each message it claims the
call at the job's Durable Object (which rejects claims no longer needed), runs it (runSubtask or runSample with
`maxRetries: 0`), and records the outcome. At most 6 calls are open at once across the
batch, and they share one limiter. A retryable failure is retried by the queue
(`msg.retry`) with backoff until the job's `maxRetries`; the last delivery always
records an outcome. Messages from the dead-letter queue named by `deadLetterQueue`
are recorded as failed without a call.
*/
export async function consumeQueueBatch(batch, {jobs, options, deadLetterQueue, concurrency = PLAN_LIMITS.free.connections} = {}) {
	if (!jobs || typeof jobs.idFromName !== 'function') {
		throw optionsError(TypeError, 'jobs', 'expected the Durable Object namespace binding of the JobObject class');
	}

	if (typeof options !== 'function') {
		throw optionsError(TypeError, 'options', 'expected a function from a job payload to its section or vote options');
	}

	const deadLetter = deadLetterQueue !== undefined && batch.queue === deadLetterQueue;
	const limiter = createLimiter(concurrency);
	const described = new Map();
	const describeJob = name => {
		if (!described.has(name)) {
			const stub = jobStub(jobs, name);
			described.set(name, stub.describe().then(info => ({stub, info})));
		}

		return described.get(name);
	};

	// A job's options are built once per batch, and only for messages that run a call.
	const prepared = new Map();
	const prepare = (name, info) => {
		if (!prepared.has(name)) {
			const jobOptions = {...options(info.payload), limiter, maxRetries: 0};
			prepared.set(name, {jobOptions, subtasksById: info.kind === 'section' ? subtaskMap(jobOptions) : null});
		}

		return prepared.get(name);
	};

	let calls = 0;
	const handle = async message => {
		const {body} = message;
		if (!isJobMessage(body)) {
			console.error(`consumeQueueBatch: acknowledged message ${message.id}, which is not a job message ({job, key})`);
			message.ack();
			return;
		}

		let job;
		try {
			job = await describeJob(body.job);
			const {stub, info} = job;
			if (!info) {
				console.error(`consumeQueueBatch: acknowledged message ${message.id} of unknown job ${JSON.stringify(body.job)}`);
				message.ack();
				return;
			}

			if (deadLetter) {
				await stub.record(body.key, failedOutcome({code: 'PROVIDER_ERROR', message: `the queue gave up on this message after ${message.attempts} deliveries`}, {}));
				message.ack();
				return;
			}

			const claim = await stub.claim(body.key);
			if (!claim.run) {
				message.ack();
				return;
			}

			const lastDelivery = message.attempts > info.limits.queueMaxRetries;
			if (calls >= info.limits.subrequests && !lastDelivery) {
				message.retry({delaySeconds: 0});
				return;
			}

			const {jobOptions, subtasksById} = prepare(body.job, info);
			calls++;
			const outcome = info.kind === 'section'
				? await settleCall(runSubtask(narrowSection(jobOptions, subtasksById, claim.id, claim.dependsOn), claim.id, claim.outputs), {id: claim.id})
				: await settleCall(runSample(jobOptions, claim.index), {index: claim.index});
			if (isRetryable(outcome) && message.attempts <= info.retry.maxRetries && !lastDelivery) {
				message.retry({delaySeconds: retryDelaySeconds(outcome, message.attempts, info.retry)});
				return;
			}

			await stub.record(body.key, outcome);
			message.ack();
		} catch (error) {
			// On the last delivery the queue allows, the error itself becomes the outcome.
			if (job?.info && message.attempts > job.info.limits.queueMaxRetries) {
				try {
					await job.stub.record(body.key, failedOutcome(error, {}));
					console.error(`consumeQueueBatch: recorded ${body.job} ${body.key} as failed on its last delivery: ${error?.message ?? error}`);
					message.ack();
					return;
				} catch {
					// The record failed too; the queue dead-letters or drops the message.
				}
			}

			console.error(`consumeQueueBatch: message ${message.id} (${body.job} ${body.key}) will be delivered again: ${error?.message ?? error}`);
			message.retry();
		}
	};

	const queue = [...batch.messages];
	const worker = async () => {
		while (queue.length > 0) {
			// eslint-disable-next-line no-await-in-loop
			await handle(queue.shift());
		}
	};

	await Promise.all(Array.from({length: Math.min(concurrency, queue.length)}, () => worker()));
}
