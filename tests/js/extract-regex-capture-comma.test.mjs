// A { regex } capture that is a number gets its canonical form, with a comma read as
// a thousands separator only before a group of three digits, as extract: "number"
// reads it. "1,5" and "2,3" are not the number 15 or 23.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const extract = {regex: 'x=(\\S+)'};

for (const [text, wrong] of [['x=1,5', '15'], ['x=2,3', '23'], ['x=1.234,5', '1.2345']]) {
	test(`regex capture of ${JSON.stringify(text)} is not ${wrong}`, () => {
		const sample = aggregate([text], {extract}).samples[0];
		assert.notEqual(sample.answer, wrong);
	});
}
