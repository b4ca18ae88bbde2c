// Smaller contracts of section and vote: options a merge never reads are rejected, a
// synthesis with nothing to combine makes no call, a voter with its own prompt keeps
// the run's system prompt, an adaptive vote stops drawing once maxRequests is spent,
// and ALL_FAILED carries its first failure as `cause`.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {custom, section, vote} from 'parallel-task-executor';

const echo = custom(async request => request.messages.at(-1).content);

test('separator without ordered merge is rejected', async () => {
	await assert.rejects(
		section({provider: echo, subtasks: [{id: 'a', prompt: 'A'}], merge: 'keyed', separator: '\n'}),
		error => error.code === 'INVALID_OPTIONS' && error.path === 'separator' && /"keyed"/.test(error.message),
	);
});

test('conflicts without json merge is rejected', async () => {
	for (const merge of [undefined, 'ordered', 'keyed']) {
		await assert.rejects(
			section({provider: echo, subtasks: [{id: 'a', prompt: 'A'}], merge, conflicts: 'first'}),
			error => error.code === 'INVALID_OPTIONS' && error.path === 'conflicts',
			`merge ${merge}`,
		);
	}
});

test('synthesis skipped when every subtask failed', async () => {
	let synthesisCalls = 0;
	const failing = custom(async () => {
		throw new Error('down');
	});
	const synthesizer = custom(async () => {
		synthesisCalls += 1;
		return 'combined';
	});
	const report = await section({
		provider: failing,
		maxRetries: 0,
		subtasks: [{id: 'a', prompt: 'A'}, {id: 'b', prompt: 'B'}],
		merge: {synthesize: {prompt: 'Combine {{outputs}}', provider: synthesizer}},
	});
	assert.equal(synthesisCalls, 0);
	assert.equal(report.output, '');
	assert.equal(report.synthesis.status, 'skipped');
	assert.deepEqual(report.synthesis.missing, ['a', 'b']);
	assert.deepEqual(report.synthesis.attempts, []);
	assert.ok(report.warnings.some(warning => warning.code === 'all-failed'));
});

test('voter with own prompt keeps run system', async () => {
	const systems = [];
	const provider = custom(async request => {
		systems.push(request.system ?? null);
		return 'yes';
	});
	await vote({
		provider,
		system: 'Answer yes or no.',
		prompt: 'Is water wet?',
		voters: [{name: 'plain'}, {name: 'reworded', prompt: 'Would you call water wet?'}, {name: 'own', system: 'Be brief.'}],
	});
	assert.deepEqual(systems.toSorted(), ['Answer yes or no.', 'Answer yes or no.', 'Be brief.']);
});

test('adaptive vote stops drawing after maxRequests', async () => {
	let calls = 0;
	// Alternating answers never settle aheadBy 3 within the budget.
	const provider = custom(async () => (calls++ % 2 === 0 ? 'a' : 'b'));
	const result = await vote({provider, prompt: 'q', voters: 2, rule: {aheadBy: 3}, maxSamples: 40, maxRequests: 6, concurrency: 1});
	assert.equal(calls, 6);
	const failed = result.samples.filter(sample => sample.status === 'failed');
	assert.ok(failed.every(sample => sample.error.code === 'BUDGET_EXCEEDED'));
	assert.ok(failed.length <= 2, `${failed.length} samples failed on the spent budget`);
	assert.equal(result.samples.length, 6 + failed.length);
});

test('ALL_FAILED has the first failure as cause', async () => {
	const provider = custom(async () => {
		throw Object.assign(new Error('model offline'), {status: 503});
	});
	const error = await section({provider, maxRetries: 0, failure: {minSuccesses: 1}, subtasks: [{id: 'a', prompt: 'A'}, {id: 'b', prompt: 'B'}]})
		.then(() => assert.fail('the run should reject'), caught => caught);
	assert.ok(error.errors.length >= 1);
	assert.ok(error.cause instanceof Error);
	assert.equal(error.cause, error.errors[0]);
});
