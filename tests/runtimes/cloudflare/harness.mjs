// Starts the Cloudflare test worker (worker.js) in Miniflare with its bindings: a
// queue with a dead-letter queue, the job Durable Object (SQLite) and two Workflows.
// Everything runs in memory, offline, against the given scripted server.
import {setTimeout as delay} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {startWorker} from '../../support/workerd.mjs';

const WORKER = fileURLToPath(new URL('worker.js', import.meta.url));

/** The consumer's max_retries, which the jobs' limits must name as queueMaxRetries. */
export const QUEUE_MAX_RETRIES = 3;

/**
Starts the worker. `batchSize` is the consumer's max_batch_size; a batch that is not
full is delivered at once (max_batch_timeout 0).
*/
export async function startCloudflareWorker(server, {batchSize = 50} = {}) {
	const worker = await startWorker(WORKER, {
		define: {__API_BASE__: `${server.url}/v1`},
		miniflare: {
			queueProducers: {TASKS: {queueName: 'tasks'}},
			queueConsumers: {
				tasks: {maxBatchSize: batchSize, maxBatchTimeout: 0, maxRetries: QUEUE_MAX_RETRIES, deadLetterQueue: 'tasks-dlq'},
				'tasks-dlq': {maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: QUEUE_MAX_RETRIES},
			},
			durableObjects: {JOB: {className: 'Job', useSQLite: true}},
			workflows: {
				SECTION_FLOW: {name: 'section-flow', className: 'SectionFlow'},
				VOTE_FLOW: {name: 'vote-flow', className: 'VoteFlow'},
			},
		},
	});

	const call = async (path, payload) => {
		const init = payload === undefined ? {} : {method: 'POST', body: JSON.stringify(payload), headers: {'content-type': 'application/json'}};
		const response = await worker.dispatchFetch(path, init);
		const text = await response.text();
		if (response.status !== 200) {
			throw new Error(`the worker answered ${path} with HTTP ${response.status}: ${text}`);
		}

		return JSON.parse(text);
	};

	/** Polls `path` until `done(value)` holds, then resolves with the value. */
	const waitFor = async (path, done, {timeoutMs = 30_000, everyMs = 50} = {}) => {
		const deadline = performance.now() + timeoutMs;
		for (;;) {
			// eslint-disable-next-line no-await-in-loop
			const value = await call(path);
			if (done(value)) {
				return value;
			}

			if (performance.now() > deadline) {
				throw new Error(`${path} did not reach the expected state within ${timeoutMs} ms; last: ${JSON.stringify(value).slice(0, 2000)}`);
			}

			// eslint-disable-next-line no-await-in-loop
			await delay(everyMs);
		}
	};

	return {...worker, call, waitFor};
}
