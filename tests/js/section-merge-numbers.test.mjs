// merge: "json" compares numbers by value: `1`, `1.0` and `1e0` are one JSON number
// and do not conflict, as in a vote with `extract: "json"`. Numbers that differ are
// still listed in `conflicts`.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {custom, section} from 'parallel-task-executor';

// Each subtask's output is its own prompt.
const echo = custom(async request => request.messages.at(-1).content);

// Integers written with a fraction or an exponent. `1.5` and `1.50` already compare
// equal, because both parse as floating-point numbers.
const SPELLINGS = ['1.0', '1e0'];

for (const spelling of SPELLINGS) {
	test(`json merge treats 1 and ${spelling} as equal`, async () => {
		const report = await section({
			provider: echo,
			subtasks: [{id: 'a', prompt: '{"n": 1}'}, {id: 'b', prompt: `{"n": ${spelling}}`}],
			merge: 'json',
			conflicts: 'error',
		});
		assert.deepEqual(report.conflicts, []);
		assert.deepEqual(report.output, {n: 1});
	});
}

test('json merge collect keeps one value for 1 and 1.0', async () => {
	const report = await section({
		provider: echo,
		subtasks: [{id: 'a', prompt: '{"n": 1}'}, {id: 'b', prompt: '{"n": 1.0}'}, {id: 'c', prompt: '{"n": 2}'}],
		merge: 'json',
		conflicts: 'collect',
	});
	assert.deepEqual(report.output, {n: [1, 2]});
	assert.equal(report.conflicts.length, 1);
	assert.deepEqual(report.conflicts[0].values.map(v => v.subtasks), [['a', 'b'], ['c']]);
});
