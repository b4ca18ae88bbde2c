// extract: "number" reads the result of a calculation written after an answer
// marker: "The answer is 2 + 2 = 4" answers 4, the way "2 + 2 = 4" alone already
// does. The first operand is not the final answer.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	['The answer is 2 + 2 = 4', '4'],
	['The answer is 10 - 3 = 7', '7'],
	['the answer is 2 + 3 = 5', '5'],
	['The answer is 6 times 7 = 42', '42'],
];

for (const [text, expected] of cases) {
	test(`number extraction reads ${JSON.stringify(text)} as ${expected}`, () => {
		const sample = aggregate([text], {extract: 'number'}).samples[0];
		assert.equal(sample.answer, expected);
	});
}
