// A given { answer } goes through the same extractor as a reply: under "number" a
// boolean or an object is no number, and under "choice" a value that is not one of
// the labels is no option. Such answers abstain (as "K" already does for "choice").
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	['number', true],
	['number', {v: 4}],
	['number', [4]],
	['choice', 7],
	['choice', true],
	['choice', {a: 1}],
];

for (const [extract, answer] of cases) {
	test(`${extract} extraction does not count ${JSON.stringify(answer)} as a vote`, () => {
		const result = aggregate([{answer}], {extract});
		assert.equal(result.valid, 0);
		assert.equal(result.winner, null);
	});
}
