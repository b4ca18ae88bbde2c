// extract: "number" reads a number with dot thousands separators and a decimal
// comma ("1.234,56", the form of most of Europe) as one number. It must never read
// the decimals alone, as "1.234,56" → 56 or "1.000,5" → 5.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	['1.000,5', '1000.5'],
	['Der Preis ist 1.234,56 €', '1234.56'],
];

for (const [text, expected] of cases) {
	test(`number extraction reads ${JSON.stringify(text)} as ${expected}`, () => {
		const sample = aggregate([text], {extract: 'number'}).samples[0];
		assert.equal(sample.answer, expected);
	});
}
