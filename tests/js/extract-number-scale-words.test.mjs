// extract: "number" never reads a spelled-out number with a scale word as its first
// word alone: "one hundred" is 100 (or no answer), never 1, and "two thousand" is
// never 2. A wrong number counts as a vote for a wrong answer.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	['The answer is one hundred', '1'],
	['It is one hundred.', '1'],
	['The answer is two thousand', '2'],
	['The answer is one million', '1'],
	['The answer is twenty-one thousand', '21'],
];

for (const [text, wrong] of cases) {
	test(`number extraction does not read ${JSON.stringify(text)} as ${wrong}`, () => {
		const sample = aggregate([text], {extract: 'number'}).samples[0];
		assert.notEqual(sample.answer, wrong);
	});
}
