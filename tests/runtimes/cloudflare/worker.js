// A worker that runs sectioning and voting jobs on Cloudflare's durable engines
// through parallel-task-executor/cloudflare: two Workflows, a queue consumer and a
// Durable Object per job. The tests drive it over HTTP and script the provider
// server; __API_BASE__ is inlined by the harness. Job options arrive as JSON, and the
// worker adds the provider, which contains the API key and never leaves the worker.
import {WorkflowEntrypoint} from 'cloudflare:workers';
import {openai, planSection, planVote, section, vote} from 'parallel-task-executor';
import {
	JobObject,
	checkLimits,
	consumeQueueBatch,
	runSectionWorkflow,
	runVoteWorkflow,
	startJob,
} from 'parallel-task-executor/cloudflare';

const provider = openai({baseURL: __API_BASE__, model: 'scripted', apiKey: 'sk-cloudflare-test-key', seed: 0});

function jobOptions(payload) {
	return {provider, ...payload};
}

function errorJson(error) {
	return {name: error.name, code: error.code, message: error.message, path: error.path, needed: error.needed, limit: error.limit};
}

/**
Runs a job function; the result or the package's error (with its partial report) as
JSON data. Errors without a code come from the runtime, such as the Workflows engine
pausing the instance, and must propagate.
*/
async function settle(run) {
	try {
		return {ok: true, report: await run()};
	} catch (error) {
		if (typeof error?.code !== 'string') {
			throw error;
		}

		return {ok: false, error: errorJson(error), report: error.report ?? null};
	}
}

export class Job extends JobObject {
	jobOptions(payload) {
		return jobOptions(payload);
	}

	jobQueue() {
		return this.env.TASKS;
	}
}

export class SectionFlow extends WorkflowEntrypoint {
	async run(event, step) {
		return settle(() => runSectionWorkflow(step, jobOptions(event.payload.options), event.payload.config));
	}
}

export class VoteFlow extends WorkflowEntrypoint {
	async run(event, step) {
		return settle(() => runVoteWorkflow(step, jobOptions(event.payload.options), event.payload.config));
	}
}

// Faults injected into the consumer, set by POST /faults. With loseRecordEvery n,
// every nth record reaches the Durable Object and then throws as if its response were
// lost. With recordTwiceEvery n, every nth record is sent twice. Claims of the keys in
// failClaimsOf and records of the keys in failRecordsOf always throw, except in the
// dead-letter queue's consumer. The consumer invocations in throwOnBatches (1-based)
// throw after handling their batch. `concurrency` is the consumer's.
const NO_FAULTS = {loseRecordEvery: 0, recordTwiceEvery: 0, failClaimsOf: [], failRecordsOf: [], throwOnBatches: [], concurrency: undefined};
let faults = {...NO_FAULTS};
const consumer = {batches: 0, records: 0, lostRecords: 0, doubledRecords: 0, thrownBatches: 0, sizes: []};

function faultyJobs(namespace, {deadLetters}) {
	return {
		idFromName: name => namespace.idFromName(name),
		get(id) {
			const stub = namespace.get(id);
			return {
				describe: () => stub.describe(),
				async claim(key) {
					if (faults.failClaimsOf.includes(key) && !deadLetters) {
						throw new Error(`injected fault: the claim of ${key} failed`);
					}

					return stub.claim(key);
				},
				async record(key, outcome) {
					if (faults.failRecordsOf.includes(key) && !deadLetters) {
						throw new Error(`injected fault: the record of ${key} failed`);
					}

					const records = ++consumer.records;
					const result = await stub.record(key, outcome);
					if (faults.recordTwiceEvery > 0 && records % faults.recordTwiceEvery === 0) {
						consumer.doubledRecords++;
						await stub.record(key, outcome);
					}

					if (faults.loseRecordEvery > 0 && records % faults.loseRecordEvery === 0) {
						consumer.lostRecords++;
						throw new Error(`injected fault: the response to record(${key}) was lost`);
					}

					return result;
				},
			};
		},
	};
}

/**
A Workflow step that memoizes results and exhausted errors by name, like the engine
across a replay, and retries a failing callback up to its limit. It passes no step
context, as older runtimes do.
*/
function memoStep(cache, names) {
	return {
		async do(name, settings, callback) {
			names.push(name);
			if (cache.has(name)) {
				const entry = cache.get(name);
				if ('error' in entry) {
					throw new Error(entry.error);
				}

				return structuredClone(entry.value);
			}

			let lastError;
			for (let attempt = 1; attempt <= settings.retries.limit + 1; attempt++) {
				try {
					// eslint-disable-next-line no-await-in-loop
					const value = await callback();
					cache.set(name, {value: structuredClone(value)});
					return value;
				} catch (error) {
					lastError = error;
				}
			}

			cache.set(name, {error: lastError.message});
			throw lastError;
		},
	};
}

async function body(request) {
	return request.json();
}

const FLOWS = {section: 'SECTION_FLOW', vote: 'VOTE_FLOW'};

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const parameter = name => url.searchParams.get(name);
		switch (url.pathname) {
			case '/workflow/create': {
				const {kind, id, options, config} = await body(request);
				const instance = await env[FLOWS[kind]].create({id, params: {options, config}});
				return Response.json({id: instance.id});
			}

			case '/workflow/status': {
				const instance = await env[FLOWS[parameter('kind')]].get(parameter('id'));
				const {status, output, error} = await instance.status();
				return Response.json({status, output: output ?? null, error: error ?? null});
			}

			case '/workflow/pause':
			case '/workflow/resume': {
				const instance = await env[FLOWS[parameter('kind')]].get(parameter('id'));
				await (url.pathname.endsWith('pause') ? instance.pause() : instance.resume());
				return Response.json({ok: true});
			}

			case '/workflow/replay': {
				// Runs the section workflow twice over one memo: the second run is a replay.
				const {options, config} = await body(request);
				const cache = new Map();
				const first = [];
				const second = [];
				const one = await settle(() => runSectionWorkflow(memoStep(cache, first), jobOptions(options), config));
				const two = await settle(() => runSectionWorkflow(memoStep(cache, second), jobOptions(options), config));
				return Response.json({first: one, second: two, firstNames: first, secondNames: second});
			}

			case '/in-process': {
				const {kind, options} = await body(request);
				return Response.json(await settle(() => (kind === 'section' ? section(jobOptions(options)) : vote(jobOptions(options)))));
			}

			case '/check-limits': {
				const {kind, options, engine, limits} = await body(request);
				return Response.json(await settle(async () => {
					const plan = kind === 'section' ? planSection(jobOptions(options)) : planVote(jobOptions(options));
					return checkLimits(plan, {engine, limits});
				}));
			}

			case '/job/start': {
				const {job, kind, payload, limits} = await body(request);
				return Response.json(await settle(() => startJob(env.JOB, job, {kind, payload, limits})));
			}

			case '/job/status': {
				return Response.json(await env.JOB.get(env.JOB.idFromName(parameter('job'))).status());
			}

			case '/job/result': {
				return Response.json(await env.JOB.get(env.JOB.idFromName(parameter('job'))).result());
			}

			case '/faults': {
				faults = {...NO_FAULTS, ...await body(request)};
				Object.assign(consumer, {batches: 0, records: 0, lostRecords: 0, doubledRecords: 0, thrownBatches: 0, sizes: []});
				return Response.json({faults});
			}

			case '/consumer': {
				return Response.json(consumer);
			}

			default: {
				return new Response('not found', {status: 404});
			}
		}
	},

	async queue(batch, env) {
		const batchNumber = ++consumer.batches;
		consumer.sizes.push(batch.messages.length);
		await consumeQueueBatch(batch, {jobs: faultyJobs(env.JOB, {deadLetters: batch.queue === 'tasks-dlq'}), options: jobOptions, deadLetterQueue: 'tasks-dlq', concurrency: faults.concurrency});
		if (faults.throwOnBatches.includes(batchNumber)) {
			consumer.thrownBatches++;
			throw new Error(`injected fault: the consumer failed after handling batch ${batchNumber}`);
		}
	},
};
