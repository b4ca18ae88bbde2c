// Type tests for pkg/index.d.ts: valid calls compile, invalid ones are errors.
// Checked by `tsc -p tests/types` (run from tests/js/types.test.mjs).
import {
	aggregate, aheadByFor, anthropic, complete, createLimiter, custom, openai, section, vote,
	type Provider, type SectionResult, type TaskError, type VoteResult,
} from 'parallel-task-executor';

const local: Provider = openai({baseURL: 'http://127.0.0.1:8080/v1', model: 'smollm2', maxTokens: 32, stream: true});
const claude = anthropic({apiKey: 'key', model: 'claude', maxTokens: 256, browser: true});
const fn = custom(async ({messages}, {signal}) => {
	signal.throwIfAborted();
	return {text: messages.at(-1)?.content ?? '', usage: {inputTokens: 1, outputTokens: 1}};
});
const limiter = createLimiter(6);

const done = await complete({provider: local, prompt: 'hi', timeoutMs: 1000, signal: AbortSignal.timeout(5000), limiter});
const text: string = done.text;

const report: SectionResult = await section({
	provider: local,
	subtasks: [{id: 'a', prompt: 'x'}, {id: 'b', messages: [{role: 'user', content: 'y {{a}}'}], dependsOn: ['a'], provider: claude}],
	failure: {minSuccesses: 1},
	merge: {synthesize: {prompt: 'Combine {{outputs}}', provider: fn}},
	onEvent(event) {
		const at: number = event.at;
		void at;
	},
});
const phases: string[][] = report.metrics.phases;

const result: VoteResult = await vote({
	provider: local,
	prompt: 'What is 2+2?',
	voters: [{name: 'terse', system: 'Be terse.', weight: 2}, {provider: claude}],
	extract: 'number',
	rule: {aheadBy: 2},
	maxSamples: 9,
	tie: 'first',
	redFlags: {maxOutputTokens: 100, refusal: true},
	budget: {tokens: 10_000, costUsd: 1},
});
const winner: string | null = result.winner;
const votes: number | undefined = result.counts['4'];

const offline = aggregate(['42', {answer: 42, weight: 0.5}, {text: 'The answer is 41', voter: 'v'}], {extract: 'number', rule: 'majority'});
const scored = aggregate([{answer: 'a', scores: {accuracy: 7}}], {rule: {score: {criteria: [{name: 'accuracy', weight: 40}], passScore: 70}}});
const k: number = aheadByFor({accuracy: 0.9, target: 0.99});

try {
	await vote({provider: local, prompt: 'x', voters: 3});
} catch (error) {
	const code = (error as TaskError).code;
	if (code === 'ALL_FAILED') {
		void (error as TaskError).errors;
	}
}

// @ts-expect-error anthropic needs maxTokens
anthropic({apiKey: 'key', model: 'claude'});
// @ts-expect-error snake_case options are not accepted
openai({model: 'm', max_tokens: 5});
// @ts-expect-error prompt and messages are exclusive
await complete({provider: local, prompt: 'a', messages: [{role: 'user', content: 'b'}]});
// @ts-expect-error voters is required
await vote({provider: local, prompt: 'x'});
// @ts-expect-error unknown rule name
aggregate(['a'], {rule: 'unanimous'});
// @ts-expect-error a subtask needs an id
await section({provider: local, subtasks: [{prompt: 'x'}]});
// @ts-expect-error the role must be user or assistant
await complete({provider: local, messages: [{role: 'system', content: 'x'}]});

void [text, phases, winner, votes, offline, scored, k];
