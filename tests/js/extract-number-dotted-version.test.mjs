// extract: "number" never returns a number that the reply does not contain: in
// "1.2.3" or "Use version 1.2.3" the trailing ".3" is part of a dotted version, not
// the number 0.3.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

for (const text of ['1.2.3', 'Use version 1.2.3', 'v1.2.3']) {
	test(`number extraction does not read ${JSON.stringify(text)} as 0.3`, () => {
		const sample = aggregate([text], {extract: 'number'}).samples[0];
		assert.notEqual(sample.answer, '0.3');
	});
}
