// extract: "number" keeps the sign a reply states in words: "negative 5" and
// "minus 5" are -5, never 5. Dropping the sign turns a vote for -5 into a vote for
// the opposite answer.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

for (const text of ['The answer is negative 5', 'The answer is minus 5', 'negative 5']) {
	test(`number extraction keeps the sign of ${JSON.stringify(text)}`, () => {
		const sample = aggregate([text], {extract: 'number'}).samples[0];
		assert.notEqual(sample.answer, '5');
	});
}
