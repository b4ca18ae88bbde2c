// Hand-written types for parallel-task-executor. Results are plain JSON-compatible
// objects: absent values are `null` (never `undefined`), and no result holds a `Map`.

/**
A provider: immutable configuration, safe to create once at module scope and share. Its API key never shows in `JSON.stringify`, `console.log` or any error: the key lives inside the wasm module, and the object only describes the provider.
*/
export interface Provider {
	/** Which API the provider speaks. */
	readonly type: 'openai' | 'anthropic' | 'custom';
	/** A name for reports: the `name` option, else the model. */
	readonly name: string;
	readonly model: string | null;
	readonly baseURL: string | null;
	/** `"[REDACTED]"` when a key is set, else `null`. */
	readonly apiKey: '[REDACTED]' | null;
	/** Names of the extra headers (their values are never shown). */
	readonly headers: readonly string[];
	readonly temperature: number | null;
	readonly topP: number | null;
	readonly maxTokens: number | null;
	readonly seed: number | null;
	readonly stream: boolean;
}

/** A `fetch`-compatible function, such as a Workers service binding's `fetch`. */
export type FetchFunction = (input: string, init: {method: string; headers: Record<string, string>; body: string; signal: AbortSignal}) => Promise<Response>;

/** USD per million tokens. */
export interface Price {
	/** USD per million input tokens. */
	input: number;
	/** USD per million output tokens. */
	output: number;
}

interface CommonProviderOptions {
	/** The model name sent with each request. */
	model: string;
	/** Sampling temperature, 0–2 (the Anthropic API caps it at 1). @default the server's default */
	temperature?: number | null;
	/** Nucleus sampling, 0–1. */
	topP?: number | null;
	/** Fields merged into every request body (for example `{ logprobs: true }` or a `response_format`). */
	extraBody?: Record<string, unknown>;
	/** Replaces the global `fetch` for this provider (a service binding, a proxy, a test counter). By default `globalThis.fetch` is looked up at call time. */
	fetch?: FetchFunction;
	/** The largest response body accepted, in bytes, an integer from 1,024 to 1,073,741,824 (1 GiB). A larger body fails that call without retry. @default 8388608 (8 MiB) */
	maxResponseBytes?: number;
	/** Prices for cost estimates and `budget.costUsd`: `{ input, output }` for this provider's model, or a map from model name to prices. */
	prices?: Price | Record<string, Price>;
	/** Extra request headers. Values of headers whose names contain key, token, auth, secret or cookie are treated as secrets. */
	headers?: Record<string, string>;
	/** Stream responses as server-sent events: lets red flags stop a sample early and feeds `delta` events. @default false */
	stream?: boolean;
	/** A name for reports and events. @default the model */
	name?: string;
}

/** Options of {@link openai}. */
export interface OpenAIOptions extends CommonProviderOptions {
	/** Base URL of an OpenAI-compatible API, up to and including `/v1`. @default "https://api.openai.com/v1" */
	baseURL?: string;
	/** The API key, sent as `Authorization: Bearer`. Optional for local servers. */
	apiKey?: string | null;
	/** Output token cap (`max_tokens`). Required when a run sets `budget.tokens`. */
	maxTokens?: number | null;
	/** Base seed. Sample `i` of a vote uses `seed + i`, so seeded samples differ. Must be a safe integer. */
	seed?: number | null;
}

/** Options of {@link anthropic}. */
export interface AnthropicOptions extends CommonProviderOptions {
	/** The API key, sent as `x-api-key`. */
	apiKey: string;
	/** Output token cap (`max_tokens`), required by the Messages API. */
	maxTokens: number;
	/** Base URL, up to and including `/v1`. @default "https://api.anthropic.com/v1" */
	baseURL?: string;
	/** The `anthropic-version` header. @default "2023-06-01" */
	version?: string;
	/** Allows calls from a browser page, which exposes the key to the page. Without it, creating the provider in a browser throws. @default false */
	browser?: boolean;
}

/** A message in the neutral form every provider maps onto its API. */
export interface Message {
	role: 'user' | 'assistant';
	content: string;
}

/** What a custom provider function receives. */
export interface CustomRequest {
	messages: Message[];
	system: string | null;
	model: string | null;
	temperature: number | null;
	topP: number | null;
	maxTokens: number | null;
	seed: number | null;
}

/** What a custom provider function returns (or a plain string). */
export interface CustomResult {
	text: string | null;
	/** Token counts, as `{ inputTokens, outputTokens }` or in either provider's own names; `null` when unknown (such as an inner run's `usage`). */
	usage?: {inputTokens?: number; outputTokens?: number} | Record<string, unknown> | null;
	/** `"stop"`, `"length"`, `"content_filter"` or the provider's own reason. */
	finishReason?: string;
}

/**
A custom provider function. It receives the request and a signal that aborts when the run no longer needs the call (an abort, a deadline, a settled vote). To have a failure retried, throw an error with `retryable: true` (and optionally `retryAfterMs`).
*/
export type CustomFunction = (request: CustomRequest, context: {signal: AbortSignal}) => CustomResult | string | Promise<CustomResult | string>;

/** Options of {@link custom}. */
export interface CustomOptions {
	/** A name for reports and events. */
	name?: string;
	/** Passed to the function as `request.model`. */
	model?: string;
	temperature?: number | null;
	topP?: number | null;
	/** Passed as `request.maxTokens`; required when a run sets `budget.tokens`. */
	maxTokens?: number | null;
	/** Base seed; sample `i` of a vote gets `seed + i`. */
	seed?: number | null;
	prices?: Price | Record<string, Price>;
}

/**
An OpenAI-compatible chat completions provider (OpenAI, OpenRouter, Groq, Together, vLLM, Ollama, llama.cpp).

@example
```
const local = openai({baseURL: 'http://127.0.0.1:8080/v1', model: 'smollm2'});
```
*/
export function openai(options: OpenAIOptions): Provider;

/** An Anthropic Messages API provider. */
export function anthropic(options: AnthropicOptions): Provider;

/**
A provider backed by your own function: the Workers AI binding, another SDK, or a nested `vote` or `section` (pass it the `signal` so an outer abort stops it).

@example
```
const ai = custom(async ({messages}, {signal}) => {
	const {response} = await env.AI.run('@cf/meta/llama-3.1-8b-instruct', {messages});
	return {text: response};
});
```
*/
export function custom(fn: CustomFunction, options?: CustomOptions): Provider;

/** A limit on open requests shared by every run it is passed to. */
export interface Limiter {
	readonly concurrency: number;
}

/**
Creates a limit on open requests that several runs share, with a shared rate-limit cool-down. On Cloudflare Workers create one per incoming request and pass it to every run of that request: Workers allows 6 open requests per invocation, and runs that share a limiter also share that cap, while runs without one each get their own.
*/
export function createLimiter(concurrency: number): Limiter;

/** Retry timing. */
export interface RetryOptions {
	/** The backoff cap starts here and doubles per retry; the wait is uniform in [0, cap). @default 500 */
	baseDelayMs?: number;
	/** The backoff cap never exceeds this. @default 20000 */
	maxDelayMs?: number;
	/** A server asking to wait longer (Retry-After) fails that call at once with `RETRY_AFTER_TOO_LONG`. @default 60000 */
	maxRetryAfterMs?: number;
}

/** Every event has these fields; `at` is milliseconds from the start of the run. */
export interface RunEvent {
	type: 'run-start' | 'attempt-start' | 'attempt-end' | 'retry' | 'rate-limited' | 'delta' | 'subtask-end' | 'sample' | 'decided' | 'cancelled' | 'merge' | 'warning' | 'run-end' | 'batch-submitted' | 'batch-progress' | 'batch-ended';
	runId: string;
	at: number;
	/** The subtask id, for calls of a `section` run. */
	subtask?: string;
	/** The sample index, for calls of a `vote` run. */
	sample?: number;
	[field: string]: unknown;
}

/** Options shared by `complete`, `section` and `vote`. */
export interface RunOptions {
	/** Calls in flight at once. On Cloudflare Workers at most 6, whatever this says. @default the run's width, at most 8 */
	concurrency?: number;
	/** A limiter shared with other runs (from {@link createLimiter}). */
	limiter?: Limiter;
	/** One attempt's time limit, headers and whole body, in milliseconds. @default 120000 */
	timeoutMs?: number;
	/** The whole run's time limit in milliseconds; then it rejects with `DEADLINE_EXCEEDED` and its partial report. */
	deadlineMs?: number;
	/** Retries after the first attempt of each call (only retryable failures). @default 2 */
	maxRetries?: number;
	retry?: RetryOptions;
	/** Attempts in all, retries included (a Workers subrequest budget). Calls beyond it fail with `BUDGET_EXCEEDED`. */
	maxRequests?: number;
	/** Limits checked before each attempt: it starts only if its input estimate plus its `maxTokens` (and their price) still fit. The estimate errs high and grows with the input counts the provider reports, so only a server that counts more input tokens than estimated, before any call reports it, can take a run past the budget. */
	budget?: {tokens?: number; costUsd?: number};
	/** Aborts the run: every request, stream and sleep stops, and the run rejects with `ABORTED` (its `cause` is the signal's reason). */
	signal?: AbortSignal;
	/** Receives every event. An exception it throws is reported once as a `warning` and the run goes on. */
	onEvent?: (event: RunEvent) => void;
}

/** What to ask: a prompt or messages, and a system prompt. */
export type TaskInput = {prompt: string; messages?: never; system?: string} | {messages: Message[]; prompt?: never; system?: string};

/** Token usage. `costUsd` is `null` without prices. */
export interface Usage {
	inputTokens: number;
	outputTokens: number;
	costUsd: number | null;
}

/** Usage of one call, with the provider's own usage object as it came. */
export interface CallUsage extends Usage {
	raw: Record<string, unknown> | null;
}

/** An error inside a report, as plain data. */
export interface ErrorData {
	code: ErrorCode;
	message: string;
	status?: number | null;
	retryable?: boolean;
	providerType?: string | null;
	providerMessage?: string | null;
	bodyExcerpt?: string | null;
	retryAfterMs?: number | null;
	[field: string]: unknown;
}

/** One attempt of a call. */
export interface Attempt {
	status: 'ok' | 'failed' | 'cancelled';
	error: ErrorData | null;
	startedMs: number;
	finishedMs: number | null;
}

/** Options of {@link complete}. */
export type CompleteOptions = RunOptions & TaskInput & {
	provider: Provider;
	/** Overrides the provider's temperature. */
	temperature?: number;
	/** Overrides the provider's seed. */
	seed?: number;
};

/** The result of {@link complete}. */
export interface CompleteResult {
	text: string;
	finishReason: string;
	model: string | null;
	logprobs: unknown;
	usage: CallUsage;
	attempts: Attempt[];
	metrics: {wallMs: number};
	warnings: Array<{code: string; message: string}>;
}

/**
Makes one call with retries, timeout, deadline and abort.

@example
```
const {text} = await complete({provider: local, prompt: 'Say hi'});
```
*/
export function complete(options: CompleteOptions): Promise<CompleteResult>;

/** One subtask of {@link section}. */
export type Subtask = TaskInput & {
	/** Matches `[A-Za-z0-9_-]+`; other subtasks refer to it as `{{id}}`. */
	id: string;
	/** More dependencies besides the `{{id}}` placeholders in the prompt. */
	dependsOn?: string[];
	/** Whether its failure stops a `failure: "fail-fast"` run, and whether its success counts toward `minSuccesses`. @default true */
	required?: boolean;
	/** Overrides the run's provider. */
	provider?: Provider;
	/** Overrides the provider's temperature. */
	temperature?: number;
};

/** Options of {@link section}. */
export type SectionOptions = RunOptions & BatchMode & {
	/** The default provider of every subtask. */
	provider?: Provider;
	subtasks: Subtask[];
	/** `"fail-fast"` rejects at the first required failure (a required subtask skipped because an optional dependency failed counts); `"settle"` resolves with what succeeded; `{ minSuccesses }` rejects with `QUORUM_NOT_MET` unless that many required subtasks succeed. @default "settle" */
	failure?: 'fail-fast' | 'settle' | {minSuccesses: number};
	/** How outputs combine; failed subtasks are left out of `output` and listed in `results`. @default "ordered" */
	merge?: 'ordered' | 'keyed' | 'json' | {synthesize: {prompt: string; provider?: Provider}};
	/** The separator of `merge: "ordered"`. @default "\n\n" */
	separator?: string;
	/** Scalar conflicts in `merge: "json"`: keep every value (`collect`), the first or last declared, or reject with `MERGE_CONFLICT`. @default "collect" */
	conflicts?: 'collect' | 'first' | 'last' | 'error';
};

/** A subtask's result. */
export interface SubtaskResult {
	id: string;
	status: 'ok' | 'failed' | 'cancelled' | 'skipped';
	text: string | null;
	finishReason: string | null;
	error: ErrorData | null;
	attempts: Attempt[];
	startedMs: number | null;
	finishedMs: number | null;
	usage: CallUsage;
	provider: string;
}

/** The result of {@link section}. */
export interface SectionResult {
	runId: string;
	/** A string for `ordered` and `synthesize`, an object for `keyed` and `json`. */
	output: unknown;
	/** Every subtask, in declaration order. */
	results: SubtaskResult[];
	/** Each JSON path where outputs disagreed; `subtasks` lists every subtask behind a value (several when they agreed or were merged first), `subtask` is the first of them. */
	conflicts: Array<{path: string; values: Array<{subtask: string; subtasks: string[]; value: unknown}>; resolution: 'collect' | 'first' | 'last' | 'error'}>;
	/** `wallMs`, `parallelism`, `expectedParallelism` and `maxInFlight` are `null` from {@link finishSection}, whose engine ran the calls. */
	metrics: {
		wallMs: number | null;
		/** Time spent inside attempts, summed over calls. */
		busyMs: number;
		/** busyMs / wallMs. */
		parallelism: number | null;
		/** What the plan allows: subtasks per phase, capped by the concurrency, the limiter and the Workers connection cap. */
		expectedParallelism: number | null;
		/** The longest chain of measured subtask durations. */
		criticalPathMs: number;
		/** The ids on that chain, in run order. */
		criticalPath: string[];
		/** Topological levels, as ids. */
		phases: string[][];
		maxInFlight: number | null;
		requests: number;
	};
	usage: Usage;
	warnings: Array<{code: string; message: string}>;
	/** The extra call of `merge: { synthesize }`; `skipped`, with no call made, when no subtask succeeded. */
	synthesis?: {status: 'ok' | 'failed' | 'cancelled' | 'skipped'; text: string | null; error: ErrorData | null; missing: string[]; attempts: Attempt[]; usage: CallUsage};
}

/**
Runs subtasks in parallel and merges their outputs. A subtask whose prompt holds `{{id}}` waits for that subtask and receives its output; each starts as soon as its own dependencies finish.

@example
```
const report = await section({
	provider: local,
	subtasks: [
		{id: 'schema', prompt: 'Design the products table.'},
		{id: 'api', prompt: 'Write the REST routes for {{schema}}.'},
		{id: 'ui', prompt: 'Sketch the catalog page.'},
	],
});
```
*/
export function section(options: SectionOptions): Promise<SectionResult>;

/** How answers are read from replies. */
export type Extract =
	| 'text'
	| 'number'
	| 'choice'
	| 'json'
	| 'ranking'
	| {regex: string; flags?: string}
	| {jsonPath: string}
	| ((text: string) => string | number | boolean | null | undefined);

/** A voting rule. */
export type Rule =
	| 'plurality'
	| 'majority'
	| 'borda'
	| {atLeast: number; answer?: string}
	/** Keep sampling until an answer has `k` votes; votes count in the order samples finish (in `aggregate`, the order given). */
	| {firstTo: number}
	/** Keep sampling until an answer leads every other by `k` votes; votes count in the order samples finish (in `aggregate`, the order given). */
	| {aheadBy: number}
	| {threshold: number; of?: 'valid' | 'samples'}
	| {score: {criteria?: Criterion[]; passScore?: number}};

/** A scoring criterion. Weights are non-negative and normalized. */
export interface Criterion {
	name: string;
	/** @default 1 */
	weight?: number;
}

/** A voting strategy. */
export type Voter = Partial<TaskInput> & {
	name?: string;
	system?: string;
	provider?: Provider;
	temperature?: number;
	/** @default 1 */
	weight?: number;
};

/** Options shared by {@link vote} and {@link aggregate}. */
export interface RuleOptions {
	/** How answers are read. `"number"` canonicalizes ("42.0" → "42"); `"choice"` reads option labels; `"json"` reads JSON, also inside fences. @default "text" */
	extract?: Extract;
	/** Labels for `extract: "choice"`. @default ["A", ..., "J"] */
	choices?: string[];
	/** @default "plurality" */
	rule?: Rule;
	/** `"none"`: a tie has no winner and `decided: false`; `"first"`: the tied answer whose first supporter has the lowest voter index wins; `"error"`: reject with `TIE`. @default "none" */
	tie?: 'none' | 'first' | 'error';
	/** Criteria for `rule: { score }`, if not given inside the rule. */
	criteria?: Criterion[];
	/** Groups free-text answers whose word sets are at least this similar (Jaccard, 0–1). */
	similarity?: number;
	/** Samples excluded from the count, with the reason. Replies cut off by the length limit and content-filtered replies are always excluded. */
	redFlags?: {
		/** More output tokens than this excludes a sample; a stream stops as soon as it is too long. */
		maxOutputTokens?: number;
		/** A regular expression (JavaScript syntax) the reply must match. */
		requireFormat?: string | {regex: string; flags?: string};
		/** `true` for built-in refusal phrases, or your own phrases. */
		refusal?: boolean | string[];
	};
}

/** Options of {@link vote}. */
export type VoteOptions = RunOptions & BatchMode & RuleOptions & Partial<TaskInput> & {
	/** The default provider of every voter. */
	provider?: Provider;
	/** `n` samples of the same task, or strategies cycled in order. */
	voters: number | Voter[];
	/** The sample cap of adaptive rules (`firstTo`, `aheadBy`). */
	maxSamples?: number;
	/** Scores candidates for `rule: { score }`; without it, each voter rates its own answer. */
	judge?: Provider | {provider?: Provider; prompt?: string};
};

/** One sample of a vote. */
export interface VoteSample {
	index: number;
	voter: number;
	voterName: string | null;
	weight: number;
	status: 'ok' | 'abstained' | 'red-flagged' | 'failed' | 'cancelled';
	text: string | null;
	answer: string | null;
	value: unknown;
	/** Why it abstained or was excluded: `no-answer`, `empty`, `extract-failed` (the extractor threw or its pattern failed), `length`, `content_filter`, `too-long`, `format`, `refusal`. */
	reason: string | null;
	error: ErrorData | null;
	finishReason: string | null;
	/** `null` for a sample that never sent a request (every sample of `aggregate`). */
	usage: CallUsage | null;
	attempts: Attempt[];
	startedMs: number | null;
	finishedMs: number | null;
}

/** The result of {@link vote} and {@link aggregate}. */
export interface VoteResult {
	/** The id every event of the run carries; `null` from {@link aggregate}. */
	runId?: string | null;
	/** Which samples each round drew, and when; `null` from {@link aggregate}. */
	roundDetails?: Array<{round: number; samples: number[]; startedMs: number}> | null;
	/** The winning answer, or `null` (a tie under `tie: "none"`, or no valid vote). */
	winner: string | null;
	/** The winner's parsed value (a number for `extract: "number"`). */
	value: unknown;
	/** Whether the rule's condition was met; `false` when the cap was reached or a tie stands. */
	decided: boolean;
	tie: boolean;
	/** For `atLeast` with an answer and for `score`: whether it passed. */
	passed: boolean | null;
	rule: string;
	tally: Array<{answer: string; value: unknown; votes: number; voters: number[]}>;
	/** Votes by answer (as shown in `winner` and `tally`), a plain object. */
	counts: Record<string, number>;
	valid: number;
	failed: number;
	abstained: number;
	redFlagged: number;
	cancelled: number;
	/** Red-flagged samples by reason. */
	excluded: Record<string, number>;
	/** Votes of the winner minus the most votes of any other answer (of the leader minus the runner-up when there is no winner). Negative when a `firstTo` or `aheadBy` winner was passed by votes counted after it met the rule, which only `aggregate` counts. */
	margin: number | null;
	/** The winner's (or else the leader's) share of the valid votes. */
	agreement: number | null;
	samples: VoteSample[];
	/** Rounds of sampling; `null` from {@link finishVote}, whose engine drew the samples. */
	rounds: number | null;
	/** Where the outcome was settled: after how many samples, in which round, and when (`atMs` is `null` from {@link aggregate} and {@link finishVote}, which see the answers in the order given or finished and report this for `firstTo` and `aheadBy` only). */
	decision: {afterSamples: number; round: number; atMs: number | null} | null;
	scores: Array<{answer: string; value: unknown; samples: number[]; scores: Record<string, number> | null; total: number | null; passed: boolean | null; problem: string | null}> | null;
	usage: Usage | null;
	/** `null` from {@link aggregate}. From {@link finishVote}, `wallMs` and `maxInFlight` are `null` and `finishMs` is the time the tally and any judge calls took. */
	metrics: {wallMs: number | null; samples: number; maxSamples: number; maxInFlight: number | null; requests: number; finishMs?: number} | null;
	warnings: Array<{code: string; message: string}>;
}

/**
Samples the same task several times and aggregates the answers. Adaptive rules stop early, and every request still running is aborted once the outcome cannot change.

@example
```
const result = await vote({
	provider: local,
	prompt: 'What is 2+2? Answer with a number.',
	voters: 5, extract: 'number', rule: {aheadBy: 2}, maxSamples: 9,
});
```
*/
export function vote(options: VoteOptions): Promise<VoteResult>;

/** An answer given to {@link aggregate}. */
export type GivenAnswer = string | null | {
	/** An answer already extracted. */
	answer?: string | number | boolean | unknown[] | Record<string, unknown>;
	/** A reply to extract the answer from. */
	text?: string;
	voter?: string;
	/** @default 1 */
	weight?: number;
	/** Scores per criterion (0–10), for `rule: { score }`. */
	scores?: Record<string, number>;
};

/**
Applies a rule to answers you already have, synchronously, with no request.

@example
```
aggregate(['42', '42.0', 'The answer is 42.', '41'], {extract: 'number'}).winner; // "42"
```
*/
export function aggregate(answers: GivenAnswer[], options?: RuleOptions): VoteResult;

/**
The smallest `k` for `rule: { aheadBy: k }` with voters of the given accuracy to reach the target reliability: the least `k` with `1 / (1 + ((1 - accuracy) / accuracy)^k) >= target`.
*/
export function aheadByFor(options: {accuracy: number; target: number}): number;

/**
The outcome of one call, as plain data that a durable engine stores (a Workflow step's return value, a Durable Object row, a batch line) and hands back to {@link finishSection} or {@link finishVote}.
*/
export interface Outcome {
	status: 'ok' | 'failed' | 'cancelled';
	text: string | null;
	finishReason: string | null;
	model: string | null;
	usage: CallUsage | null;
	error: ErrorData | null;
	attempts: Attempt[];
	/** The subtask id, from {@link runSubtask}. */
	id?: string;
	/** The sample index, from {@link runSample}. */
	index?: number;
}

/** What {@link planSection} returns. */
export interface SectionPlan {
	kind: 'section';
	subtasks: Array<{id: string; dependsOn: string[]; required: boolean; phase: number; key: string}>;
	phases: string[][];
	failure: 'fail-fast' | 'settle' | {minSuccesses: number};
	/** Whether {@link finishSection} makes one more call (`merge: { synthesize }`). */
	synthesize: boolean;
	/** The most calls {@link finishSection} makes: 1 with `merge: { synthesize }`, else 0. */
	finishCalls: number;
	/** The resolved retry settings, for an engine that retries each call itself and runs it with `maxRetries: 0`. */
	retry: PlanRetry;
}

/** Retry settings with their defaults applied, as {@link planSection} and {@link planVote} return them. */
export interface PlanRetry {
	maxRetries: number;
	baseDelayMs: number;
	maxDelayMs: number;
	maxRetryAfterMs: number;
	timeoutMs: number;
}

/**
Checks section options (cycles, unknown dependencies, every option) and returns the plan for a durable engine that runs one subtask at a time: run a subtask with {@link runSubtask} once every id in its `dependsOn` has an output, and name its step by `key`, which stays the same across replays.
*/
export function planSection(options: SectionOptions): SectionPlan;

/**
Runs one subtask with its dependencies' outputs (`{ [id]: text }`) filled into its `{{id}}` placeholders, with the run options' retries and timeout, and resolves to its outcome. When the engine retries the step itself, pass `maxRetries: 0` so a call is never retried by both.
*/
export function runSubtask(options: SectionOptions, id: string, outputs?: Record<string, string>): Promise<Outcome>;

/**
Merges stored outcomes into the same report as {@link section}, applying the failure policy and the merge. A subtask without an outcome is `skipped` when a dependency did not succeed and `cancelled` otherwise. Times in the report are relative to each call's own step, so `wallMs` and `parallelism` are `null`.
*/
export function finishSection(options: SectionOptions, outcomes: Record<string, Outcome> | Outcome[]): Promise<SectionResult>;

/** What {@link planVote} returns. */
export interface VotePlan {
	kind: 'vote';
	rule: string;
	/** Whether the rule may ask for more samples after the first round. */
	adaptive: boolean;
	firstRound: number;
	maxSamples: number;
	samples: Array<{index: number; voter: number; voterName: string | null; key: string}>;
	/** The most calls {@link finishVote} makes: a judge's calls under `rule: { score }` (at most one per sample), else 0. */
	finishCalls: number;
	/** The resolved retry settings, for an engine that retries each call itself and runs it with `maxRetries: 0`. */
	retry: PlanRetry;
}

/** Checks vote options and returns the first round and limits, for a durable engine that runs one sample at a time. */
export function planVote(options: VoteOptions): VotePlan;

/** Runs sample `index` (its voter, its seed) with the run options' retries and resolves to its outcome. */
export function runSample(options: VoteOptions, index: number): Promise<Outcome>;

/**
Given the stored outcomes in the order they finished and the indexes still running, says whether the vote is settled, which samples to run next (`next`), and which running ones no longer matter (`cancel`).
*/
export function evaluateVote(options: VoteOptions, outcomes: Outcome[], pending?: number[]): {settled: boolean; done: boolean; winner: string | null; decided: boolean; next: number[]; cancel: number[]};

/** Tallies stored outcomes into the same result as {@link vote} (judge calls of a `score` rule included). Only the samples given an outcome appear in `samples`: pass `{ index, status: 'cancelled' }` for a requested sample that never ran. */
export function finishVote(options: VoteOptions, outcomes: Outcome[]): Promise<VoteResult>;

/** Counts of providers and limiters alive inside the wasm module, for leak checks. */
export function liveHandles(): {providers: number; limiters: number};

/** Every error code. */
export type ErrorCode =
	| 'INVALID_OPTIONS'
	| 'DEPENDENCY_CYCLE'
	| 'UNKNOWN_DEPENDENCY'
	| 'ABORTED'
	| 'DEADLINE_EXCEEDED'
	| 'BUDGET_EXCEEDED'
	| 'QUORUM_NOT_MET'
	| 'ALL_FAILED'
	| 'TIE'
	| 'MERGE_CONFLICT'
	| 'RETRY_AFTER_TOO_LONG'
	| 'PROVIDER_ERROR'
	/** A bug in the library: a call hit an internal panic. Only that call fails; the module stays usable. */
	| 'INTERNAL_ERROR';

/**
The shape of every rejection: an `Error` (a `TypeError` or `RangeError` for bad options) with a stable `code` and the partial result in `report`. An `ABORTED` error has `name === "AbortError"` and the signal's reason as `cause`.
*/
export interface TaskError extends Error {
	code: ErrorCode;
	/** The partial result: every subtask or sample, with its status. */
	report?: unknown;
	/** Every underlying error, for `ALL_FAILED` and `QUORUM_NOT_MET`. */
	errors?: TaskError[];
	status?: number | null;
	retryable?: boolean;
	providerType?: string | null;
	providerMessage?: string | null;
	bodyExcerpt?: string | null;
	retryAfterMs?: number | null;
	/** The option path at fault, for `INVALID_OPTIONS`. */
	path?: string;
}

// ---------------------------------------------------------------------------
// Provider batch APIs: the `batch` option of `section` and `vote`, the handle in
// `report.batch`, and `resumeBatch`.
// ---------------------------------------------------------------------------

/** Settings of `batch: { ... }`. */
export interface BatchOptions {
	/** Wait before the first status check, in milliseconds. @default 5000 */
	pollIntervalMs?: number;
	/** Each wait is 1.5 times the last, up to this many milliseconds. @default 60000 */
	maxPollIntervalMs?: number;
	/** A plan above a provider's limits (OpenAI 50,000 requests or 200 MB per batch, Anthropic 100,000 or 256 MB) is submitted as several batches; with `false` it is rejected with `INVALID_OPTIONS` naming the limit. @default true */
	split?: boolean;
	/** Up to 16 string pairs attached to each OpenAI batch (keys up to 64 characters, values up to 512). Anthropic batches take none. */
	metadata?: Record<string, string>;
	/** A lower request limit per batch than the provider's. */
	maxRequestsPerBatch?: number;
	/** A lower byte limit per batch than the provider's (the uploaded file for OpenAI, the create request's body for Anthropic). */
	maxBytesPerBatch?: number;
	/** After an abort, how long to wait for the cancelled batches to end, in milliseconds, so that the requests that finished are collected. @default 60000 */
	cancelWaitMs?: number;
	/** Batches submitted by an earlier call, to poll instead of submitting again (what {@link resumeBatch} passes). */
	resume?: BatchHandle;
}

/** The `batch` option shared by `section` and `vote`. */
export interface BatchMode {
	/**
	Sends the requests through the provider's batch API (OpenAI Batch API, Anthropic Message Batches) at half price and resolves with the same report, plus `report.batch`. Requests wait up to 24 hours at the provider. A plan with dependencies runs one batch per phase. `vote` takes fixed rules only (a batch cannot stop early), and custom providers are rejected. The run's `signal` also cancels the batches at the provider; `deadlineMs` only stops waiting, and the batches keep running for {@link resumeBatch}. `false` runs in process.
	*/
	batch?: boolean | BatchOptions;
}

/** One batch a run submitted. */
export interface BatchHandleBatch {
	provider: 'openai' | 'anthropic';
	/** The provider's batch id. */
	id: string;
	/** The plan phase (always 0 for a vote). */
	phase: number;
	/** The `custom_id` of each request: `subtask-<id>` or `sample-<index>`. */
	customIds: string[];
	/** The uploaded input file (OpenAI only). */
	inputFileId?: string | null;
	baseURL?: string;
	model?: string | null;
	/** The provider's status when last checked: `validating`, `in_progress`, `finalizing`, `completed`, `failed`, `expired`, `cancelling`, `cancelled` (OpenAI) or `in_progress`, `canceling`, `ended` (Anthropic). */
	status?: string | null;
	/** The provider's `request_counts` as it sent them. */
	requestCounts?: Record<string, number> | null;
}

/** Plain data that identifies a batch run's batches; store it and pass it to {@link resumeBatch}. */
export interface BatchHandle {
	version?: 1;
	kind: 'section' | 'vote';
	batches: BatchHandleBatch[];
}

/** A result line that matched no request of its batch, or repeated one; it is not counted. */
export interface BatchUnmatchedLine {
	batchId: string;
	file: string | null;
	line: number | null;
	customId: string | null;
	reason: 'unknown-custom-id' | 'duplicate-custom-id' | 'missing-custom-id' | 'unreadable-line';
}

/** `report.batch`: the handle, plus the result lines that were not counted. */
export interface BatchReport extends BatchHandle {
	unmatched: BatchUnmatchedLine[];
}

export interface SectionResult {
	/** The batches of a `batch` run. */
	batch?: BatchReport;
}

export interface VoteResult {
	/** The batches of a `batch` run. */
	batch?: BatchReport;
}

/** The events of a `batch` run, besides `run-start`, `warning` and `run-end`. */
export type BatchEvent =
	| (RunEvent & {type: 'batch-submitted'; batchId: string; provider: 'openai' | 'anthropic'; phase: number; requests: number; handle: BatchHandle})
	| (RunEvent & {type: 'batch-progress' | 'batch-ended'; batchId: string; provider: 'openai' | 'anthropic'; phase: number; status: string | null; counts: Record<string, number> | null});

/**
Resumes a batch run from its handle (`report.batch`, `err.report.batch`, or the `handle` of a `batch-submitted` event), for example in a later request of a Worker: it polls the batches the handle lists, submits the requests they do not hold, and resolves with the same report as the first call. Pass the options of the first call.

@example
```
try {
	return await vote({...options, batch: true, deadlineMs: 20_000});
} catch (error) {
	if (error.code !== 'DEADLINE_EXCEEDED') throw error;
	await store.put(jobId, JSON.stringify(error.report.batch));
}
// Later:
const result = await resumeBatch(JSON.parse(await store.get(jobId)), options);
```
*/
export function resumeBatch(handle: BatchHandle & {kind: 'section'}, options: SectionOptions): Promise<SectionResult>;
export function resumeBatch(handle: BatchHandle & {kind: 'vote'}, options: VoteOptions): Promise<VoteResult>;
export function resumeBatch(handle: BatchHandle, options: SectionOptions | VoteOptions): Promise<SectionResult | VoteResult>;

/** The requests and bytes one batch may hold, per provider. */
export function batchLimits(): Record<'openai' | 'anthropic', {maxRequests: number; maxBytes: number}>;
