// extract: "choice" reads the option a reply picks first and then explains: "B,
// because A is wrong" and "B" followed by an explanation that mentions A both
// choose B. A label named only inside the reasoning is not the choice.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	'B\n\nExplanation: A is wrong because it ignores friction.',
	'B, because A is wrong',
	'I choose B over A',
];

for (const text of cases) {
	test(`choice extraction reads B from ${JSON.stringify(text)}`, () => {
		const sample = aggregate([text], {extract: 'choice'}).samples[0];
		assert.equal(sample.answer, 'B');
	});
}
