// Types of parallel-task-executor/cloudflare. The Workflow step and the Durable Object
// base class come from `cloudflare:workers`, which @cloudflare/workers-types or the
// output of `wrangler types` declares.
import type {DurableObject, WorkflowStep} from 'cloudflare:workers';
import type {ErrorCode, ErrorData, Outcome, SectionOptions, SectionPlan, SectionResult, TaskError, VoteOptions, VotePlan, VoteResult} from './index.js';

/** Cloudflare's limits that a plan is checked against. */
export interface PlanLimits {
	/** The preset the values start from. */
	plan: 'free' | 'paid';
	/** Steps per Workflow instance. Free 1,024; paid 10,000 by default, up to 25,000. */
	steps: number;
	/** External subrequests per Worker invocation and per Workflow instance. Free 50; paid 10,000 by default. */
	subrequests: number;
	/** Calls to Cloudflare services (the job's Durable Object) per invocation: 1,000 on both plans. */
	serviceSubrequests: number;
	/** Simultaneous open connections per invocation: 6 on every plan. */
	connections: number;
	/** The consumer's `max_batch_size`. Queues' default is 10 and the maximum 100. */
	queueBatchSize: number;
	/** The consumer's `max_retries`. Queues' default is 3 and the maximum 100. */
	queueMaxRetries: number;
	/** Messages per `sendBatch`: at most 100. */
	sendBatchSize: number;
	/** Bytes per `sendBatch`: at most 256,000. */
	sendBatchBytes: number;
	/** Bytes per queue message: at most 128,000. */
	messageBytes: number;
	/** Bytes a Workflow step may return: at most 1 MiB. */
	stepResultBytes: number;
}

/** A preset name, or overrides on the preset named by `plan` ("free" when left out). */
export type LimitsOption = 'free' | 'paid' | Partial<PlanLimits>;

/** The limits of the Workers Free and Workers Paid plans. */
export const PLAN_LIMITS: {readonly free: Readonly<PlanLimits>; readonly paid: Readonly<PlanLimits>};

/**
Resolves a limits option into complete limits. Throws a TypeError or RangeError with code `INVALID_OPTIONS` naming the bad limit.
*/
export function resolveLimits(limits?: LimitsOption): Readonly<PlanLimits>;

/** The needs of a plan run as a Workflow instance. */
export interface WorkflowNeeds {
	engine: 'workflow';
	plan: 'free' | 'paid';
	calls: number;
	/** One step per call and the finishing step. */
	steps: number;
	/** The maximum number of subrequests, every retry included. */
	subrequests: number;
}

/** The needs of a plan run through Queues. */
export interface QueueNeeds {
	engine: 'queues';
	plan: 'free' | 'paid';
	calls: number;
	messages: number;
	batches: number;
	subrequestsPerInvocation: number;
}

/**
Checks a plan against an engine's limits before anything starts. Throws a RangeError with code `INVALID_OPTIONS` whose `path` names the limit (such as `limits.steps`), with `needed` and `limit`, when the plan does not fit. For `engine: "queues"` it also checks the largest queue message `{job, key}` against `limits.messageBytes`; pass the job's name as `job` to count it, as `startJob` does.

@example
```
checkLimits(planSection(options), {engine: 'workflow', limits: 'free'});
// RangeError: limits.steps: the plan needs 2,003 steps (2,002 calls and the finishing step) but a Workflow instance may run 1,024 on the free plan; …
```
*/
export function checkLimits(plan: SectionPlan | VotePlan, options?: {engine?: 'workflow'; limits?: LimitsOption}): WorkflowNeeds;
export function checkLimits(plan: SectionPlan | VotePlan, options: {engine: 'queues'; limits?: LimitsOption; /** The job's name, which every queue message carries. @default "" */ job?: string}): QueueNeeds;

/** Options of the Workflow helpers. */
export interface WorkflowConfig {
	/** Checked before the first step. @default "free" */
	limits?: LimitsOption;
	/** Steps running at once. @default 6 */
	concurrency?: number;
	/** Each step's timeout, as Workflows take it (`"10 minutes"` or milliseconds). @default Workflows' own, 10 minutes */
	timeout?: string | number;
}

/**
Runs a sectioning job inside a Workflow's `run(event, step)`: one `step.do` per subtask, named by the plan's stable key (`subtask-<id>`), started once its dependencies' steps have results, then a `finish` step that merges. Each step retries with `retries: { limit: maxRetries, delay: retry.baseDelayMs, backoff: "exponential" }` while the call inside runs with `maxRetries: 0`. A call that fails on its last attempt is stored as a failed outcome. Resolves to the same report as `section`, and rejects like it (the error's `report` lists every subtask).

Let errors without a `code` propagate out of `run`: they are the engine's own, such as a pause.

@example
```
export class Report extends WorkflowEntrypoint {
	async run(event, step) {
		return runSectionWorkflow(step, {provider, subtasks: event.payload.subtasks}, {limits: 'paid'});
	}
}
```
*/
export function runSectionWorkflow(step: WorkflowStep, options: SectionOptions, config?: WorkflowConfig): Promise<SectionResult>;

/**
Runs a vote inside a Workflow's `run(event, step)`: one `step.do` per sample (`sample-<index>`), in rounds. After each round `evaluateVote` returns the samples to draw next, so a settled vote starts no more steps. A `finish` step tallies. Resolves to the same result as `vote`, with `rounds` and `roundDetails` filled in.
*/
export function runVoteWorkflow(step: WorkflowStep, options: VoteOptions, config?: WorkflowConfig): Promise<VoteResult>;

/** The part of a Queue binding that the helpers use. */
export interface QueueLike {
	sendBatch(messages: Iterable<{body: unknown; contentType?: 'json' | 'text' | 'bytes' | 'v8'; delaySeconds?: number}>): Promise<unknown>;
}

/** The part of a Durable Object namespace binding that the helpers use. */
export interface JobNamespace {
	idFromName(name: string): unknown;
	get(id: any): any;
}

/** A queue message of a job. */
export interface JobMessage {
	job: string;
	/** `subtask-<id>` or `sample-<index>`. */
	key: string;
}

/**
Sends message bodies with `sendBatch`, split within `limits.sendBatchSize` messages and `limits.sendBatchBytes` bytes per batch. Rejects with a RangeError naming `limits.messageBytes` when one body is too large. Resolves to the number of batches sent.
*/
export function sendInBatches(queue: QueueLike, bodies: Iterable<unknown>, limits?: LimitsOption): Promise<number>;

/** The description of a job that `startJob` takes. */
export interface JobSpec {
	kind: 'section' | 'vote';
	/** Plain data from which `JobObject.jobOptions` builds the run's options; stored with the job. */
	payload: unknown;
	/** Checked when the job starts. @default "free" */
	limits?: LimitsOption;
}

/** A job's progress. */
export interface JobStatus {
	job: string | null;
	kind?: 'section' | 'vote';
	/** `finishing` once every outcome is in and the merge or tally is running. */
	state: 'running' | 'finishing' | 'done' | 'unknown';
	/** Subtasks, or the vote's `maxSamples`. */
	total?: number;
	/** Subtasks or samples sent to the queue. */
	queued?: number;
	recorded?: number;
	ok?: number;
	failed?: number;
	cancelled?: number;
	skipped?: number;
	/** Queued and neither recorded nor cancelled. */
	pending?: number;
	/** Records refused because the key had an outcome already. */
	duplicates?: number;
	/** Messages acknowledged without a call because their key had an outcome already. */
	redelivered?: number;
	startedAt?: number;
	finishedAt?: number | null;
	/** For votes: whether the vote is settled, its winner, and after how many outcomes. */
	settled?: boolean;
	winner?: string | null;
	decidedAfter?: number | null;
	decidedAt?: number | null;
	/** From `startJob`: whether this call started the job. */
	started?: boolean;
}

/** A finished job: the same report as `section` or `vote`, or the run's error as data with its partial report. */
export type JobResult =
	| {state: 'done'; ok: true; report: SectionResult | VoteResult}
	| {state: 'done'; ok: false; error: ErrorData & {name: string; code: ErrorCode}; report: SectionResult | VoteResult | null}
	| {state: 'running' | 'finishing' | 'unknown'};

/**
Starts a job on its Durable Object (one object per job, named by `job`): checks the options and the limits (every queue message against `limits.messageBytes` included), stores the payload and queues the first subtasks or samples. Starting a job that exists changes nothing. Rejects with the package's errors (`INVALID_OPTIONS` naming a limit, `UNKNOWN_DEPENDENCY`, …) before anything is queued.
*/
export function startJob(namespace: JobNamespace, job: string, spec: JobSpec): Promise<JobStatus>;

/**
The Durable Object that owns one job run through Queues. It records each outcome once by key, so a redelivered message does not count twice. It queues subtasks once their dependencies are recorded, stops a vote's samples once it is settled, and merges or tallies in an alarm once the last outcome is in.

@example
```
export class Job extends JobObject {
	jobOptions(payload) {
		return {provider: model(this.env), ...payload};
	}

	jobQueue() {
		return this.env.TASKS;
	}
}
```
*/
export abstract class JobObject<Env = unknown> extends DurableObject<Env> {
	/** The options of the job's `section` or `vote` run (providers included), built from its payload. */
	abstract jobOptions(payload: any): SectionOptions | VoteOptions;
	/** The Queue binding that the consumer reads. */
	abstract jobQueue(): QueueLike;
	/**
	The retry policy of a failed queue send, which is tried again from an alarm: `attempts` sends in all, the first retry after `baseDelayMs`, each later one after twice the delay before, at most `maxDelayMs`. Once the attempts are used up, the calls of the unsent messages are recorded as failed with the send error, so the job still finishes. Override it to change the policy.
	@default {attempts: 10, baseDelayMs: 1000, maxDelayMs: 60000}
	*/
	sendRetry(): {attempts: number; baseDelayMs: number; maxDelayMs: number};
	/** Starts the job; {@link startJob} calls it. */
	start(spec: JobSpec & {job: string}): Promise<JobStatus | {started: false; error: ErrorData}>;
	/** Whether a consumer may run the call for `key`, with a subtask's dependency outputs. */
	claim(key: string): Promise<{run: false; reason: string} | {run: true; index: number} | {run: true; id: string; dependsOn: string[]; outputs: Record<string, string>}>;
	/** Returns the job's kind, payload, retry settings and limits, which a consumer needs to run its calls. */
	describe(): {job: string; kind: 'section' | 'vote'; payload: unknown; retry: SectionPlan['retry']; limits: PlanLimits} | null;
	/** Records the outcome of `key` once. */
	record(key: string, outcome: Outcome): Promise<{recorded: true} | {recorded: false; duplicate: true}>;
	status(): JobStatus;
	result(): Promise<JobResult>;
	alarm(): Promise<void>;
}

/** The part of a queue message that the consumer uses. */
export interface QueueMessageLike {
	readonly id: string;
	readonly body: unknown;
	readonly attempts: number;
	ack(): void;
	retry(options?: {delaySeconds?: number}): void;
}

/** Options of {@link consumeQueueBatch}. */
export interface ConsumerConfig {
	/** The Durable Object namespace binding of the JobObject subclass. */
	jobs: JobNamespace;
	/** Builds a job's options from its payload, as `JobObject.jobOptions` does. */
	options: (payload: any) => SectionOptions | VoteOptions;
	/** The name of the dead-letter queue; its messages are recorded as failed without a call. */
	deadLetterQueue?: string;
	/** Calls open at once in this invocation. @default 6 */
	concurrency?: number;
}

/**
Handles a batch in a queue consumer: claims each message's call at its job's Durable Object, runs it with `maxRetries: 0` (at most `concurrency` open at once, sharing one limiter), and records the outcome. A retryable failure is retried by the queue with backoff until the job's `maxRetries`; the last delivery always records an outcome.

@example
```
export default {
	async queue(batch, env) {
		await consumeQueueBatch(batch, {jobs: env.JOB, options: payload => ({provider: model(env), ...payload}), deadLetterQueue: 'tasks-dlq'});
	},
};
```
*/
export function consumeQueueBatch(batch: {readonly queue: string; readonly messages: readonly QueueMessageLike[]}, config: ConsumerConfig): Promise<void>;

export type {TaskError};
