// Type tests for pkg/cloudflare.d.ts: a worker's typical use compiles, misuse is an
// error. Checked by `tsc -p tests/runtimes/cloudflare/types` (from
// tests/js/cloudflare-types.test.mjs).
import {WorkflowEntrypoint, type WorkflowStep} from 'cloudflare:workers';
import {openai, planSection, type SectionResult, type VoteResult} from 'parallel-task-executor';
import {
	JobObject,
	PLAN_LIMITS,
	checkLimits,
	consumeQueueBatch,
	resolveLimits,
	runSectionWorkflow,
	runVoteWorkflow,
	sendInBatches,
	startJob,
	type JobResult,
	type JobStatus,
	type QueueLike,
	type QueueNeeds,
	type WorkflowNeeds,
} from 'parallel-task-executor/cloudflare';

type Env = {TASKS: QueueLike; JOB: {idFromName(name: string): unknown; get(id: unknown): any}};

const provider = openai({baseURL: 'http://127.0.0.1:8080/v1', model: 'm'});

export class Job extends JobObject<Env> {
	jobOptions(payload: {subtasks: Array<{id: string; prompt: string}>}) {
		return {provider, subtasks: payload.subtasks};
	}

	jobQueue() {
		return this.env.TASKS;
	}
}

export class Flow extends WorkflowEntrypoint<Env, {prompt: string}> {
	async run(event: {payload: {prompt: string}}, step: WorkflowStep) {
		const report: SectionResult = await runSectionWorkflow(step, {provider, subtasks: [{id: 'a', prompt: event.payload.prompt}]}, {limits: 'paid', concurrency: 4, timeout: '5 minutes'});
		const result: VoteResult = await runVoteWorkflow(step, {provider, prompt: event.payload.prompt, voters: 3}, {limits: {plan: 'paid', steps: 25_000}});
		return {report, result};
	}
}

const steps: number = PLAN_LIMITS.free.steps;
const resolved = resolveLimits({plan: 'paid', subrequests: 20_000});
const workflow: WorkflowNeeds = checkLimits(planSection({provider, subtasks: [{id: 'a', prompt: 'x'}]}));
const queues: QueueNeeds = checkLimits(planSection({provider, subtasks: [{id: 'a', prompt: 'x'}]}), {engine: 'queues', limits: 'free'});

async function handlers(env: Env, batch: {queue: string; messages: Array<{id: string; body: unknown; attempts: number; ack(): void; retry(options?: {delaySeconds?: number}): void}>}) {
	const status: JobStatus = await startJob(env.JOB, 'job-1', {kind: 'section', payload: {subtasks: []}, limits: 'paid'});
	const sent: number = await sendInBatches(env.TASKS, [{job: 'job-1', key: 'subtask-a'}], 'free');
	await consumeQueueBatch(batch, {jobs: env.JOB, options: payload => ({provider, ...payload}), deadLetterQueue: 'tasks-dlq'});
	const result: JobResult = await env.JOB.get(env.JOB.idFromName('job-1')).result();
	if (result.state === 'done' && result.ok) {
		void result.report;
	}

	return {status, sent};
}

// @ts-expect-error an unknown preset
resolveLimits('enterprise');
// @ts-expect-error an unknown limit
resolveLimits({stepz: 1});
// @ts-expect-error a job kind
void startJob({idFromName: () => 1, get: () => ({})}, 'j', {kind: 'chain', payload: {}});
// @ts-expect-error the options function is required
void consumeQueueBatch({queue: 'q', messages: []}, {jobs: {idFromName: () => 1, get: () => ({})}});

void [steps, resolved, workflow, queues, handlers];
