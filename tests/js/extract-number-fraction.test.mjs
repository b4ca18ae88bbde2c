// extract: "number" gives one answer for one fraction however the reply frames it:
// "3/4" and "The answer is 3/4" count as the same vote, and neither counts as a
// vote for 3 or for 4 alone.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

test('fraction with and without marker', () => {
	const result = aggregate(['3/4', 'The answer is 3/4'], {extract: 'number'});
	assert.equal(result.samples[0].answer, result.samples[1].answer);
});

for (const text of ['3/4', 'The answer is 3/4', 'Final answer: \\boxed{\\frac{3}{4}}']) {
	test(`number extraction does not read ${JSON.stringify(text)} as one part of the fraction`, () => {
		const {answer} = aggregate([text], {extract: 'number'}).samples[0];
		assert.notEqual(answer, '3');
		assert.notEqual(answer, '4');
	});
}
