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

// Values the runtime rejects with INVALID_OPTIONS, which the types reject too.
// @ts-expect-error an unknown conflict policy
await section({provider: local, subtasks: [{id: 'a', prompt: 'x'}], merge: 'json', conflicts: 'newest'});
// @ts-expect-error an unknown merge
await section({provider: local, subtasks: [{id: 'a', prompt: 'x'}], merge: 'concat'});
// @ts-expect-error an unknown failure policy
await section({provider: local, subtasks: [{id: 'a', prompt: 'x'}], failure: 'ignore'});
// @ts-expect-error dependsOn is an array of ids
await section({provider: local, subtasks: [{id: 'a', prompt: 'x', dependsOn: 'b'}]});
// @ts-expect-error subtasks is required
await section({provider: local});
// @ts-expect-error an unknown tie policy
await vote({provider: local, prompt: 'x', voters: 3, tie: 'random'});
// @ts-expect-error an unknown extractor
await vote({provider: local, prompt: 'x', voters: 3, extract: 'digits'});
// @ts-expect-error an unknown rule key
await vote({provider: local, prompt: 'x', voters: 3, rule: {aheadOf: 2}});
// @ts-expect-error voters is a number or a list, not a string
await vote({provider: local, prompt: 'x', voters: '3'});
// @ts-expect-error a BigInt is not a count
await vote({provider: local, prompt: 'x', voters: 3n});
// @ts-expect-error concurrency is a number
await complete({provider: local, prompt: 'x', concurrency: '3'});
// @ts-expect-error a misspelled run option
await complete({provider: local, prompt: 'x', concurency: 2});
// @ts-expect-error the prompt is a string
await complete({provider: local, prompt: 42});
// @ts-expect-error a provider comes from openai(), anthropic() or custom()
await complete({provider: {baseURL: 'http://127.0.0.1:1/v1'}, prompt: 'x'});
// @ts-expect-error a signal is an AbortSignal
await complete({provider: local, prompt: 'x', signal: 'stop'});
// @ts-expect-error onEvent is a function
await complete({provider: local, prompt: 'x', onEvent: 5});
// @ts-expect-error unknown retry option
await complete({provider: local, prompt: 'x', retry: {base: 5}});
// @ts-expect-error openai needs a model
openai({baseURL: 'http://127.0.0.1:1/v1'});
// @ts-expect-error anthropic needs an apiKey
anthropic({model: 'claude', maxTokens: 10});
// @ts-expect-error headers are strings
openai({model: 'm', headers: {'x-id': 1}});
// @ts-expect-error custom needs a function
custom('nope');
// @ts-expect-error createLimiter takes a number
createLimiter('2');
// @ts-expect-error aggregate takes a list of answers
aggregate('42');
// @ts-expect-error an aggregate answer is a string or an object
aggregate([42n]);
// @ts-expect-error an unknown aggregate option
aggregate(['a'], {max_samples: 2});
// @ts-expect-error a criterion needs a name
aggregate(['a'], {rule: {score: {criteria: [{weight: 1}], passScore: 50}}});
// @ts-expect-error the role of a message is user or assistant
await vote({provider: local, messages: [{role: 'tool', content: 'x'}], voters: 3});

void [text, phases, winner, votes, offline, scored, k];
