// aggregate rejects a given answer that JSON cannot carry (NaN, Infinity, a BigInt,
// a Symbol, a Map, a Date) with INVALID_OPTIONS and a path naming its index. The
// library's internal encoding of such values never appears as an answer.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	['NaN', Number.NaN, 'number'],
	['Infinity', Number.POSITIVE_INFINITY, 'number'],
	['a BigInt', 10n, 'number'],
	['a Symbol', Symbol('s'), 'text'],
	['a Map', new Map([[1, 2]]), 'text'],
	['a Date', new Date(0), 'text'],
	['a nested NaN', {x: Number.NaN}, 'json'],
];

for (const [name, value, extract] of cases) {
	test(`aggregate rejects ${name} as an answer`, () => {
		assert.throws(() => aggregate(['4', {answer: value}], {extract}), error => {
			assert.equal(error.code, 'INVALID_OPTIONS');
			assert.match(error.path, /^answers\[1\]\.answer/);
			return true;
		});
	});
}
