// An extract function is synchronous, `(text) => answer`. One that returns a
// promise (an async function) is an extractor failure (`extract-failed`), the way
// a returned function is. A promise never counts as a vote for "{}".
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate, custom, vote} from 'parallel-task-executor';

test('aggregate: async extract function abstains', () => {
	const result = aggregate(['B', 'C'], {extract: async text => text});
	assert.equal(result.counts['{}'], undefined);
	for (const sample of result.samples) {
		assert.equal(sample.status, 'abstained');
		assert.equal(sample.reason, 'extract-failed');
	}
});

test('vote: async extract function abstains', async () => {
	let next = 0;
	const provider = custom(async () => ['B', 'C', 'D'][next++ % 3]);
	const result = await vote({provider, prompt: 'q', voters: 3, extract: async text => text});
	assert.notEqual(result.winner, '{}');
	assert.equal(result.valid, 0);
});
