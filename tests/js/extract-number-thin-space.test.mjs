// extract: "number" reads a number grouped with a thin space (U+2009) or a narrow
// no-break space (U+202F), the SI thousands separators, as one number: "1 000" is
// 1000. It must never read the last group alone ("000" as 0).
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	['1\u2009000', '1000'],
	['1\u202F000', '1000'],
	['The total is 12\u202F345 km', '12345'],
];

for (const [text, expected] of cases) {
	test(`number extraction reads ${JSON.stringify(text)} as ${expected}`, () => {
		const result = aggregate([text], {extract: 'number'});
		assert.equal(result.samples[0].answer, expected);
	});
}
