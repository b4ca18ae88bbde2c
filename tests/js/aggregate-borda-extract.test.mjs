// rule: "borda" never drops valid votes silently. An extractor that yields single
// answers (number, choice, a regular expression) gives no ranked ballots, so such
// options are rejected with INVALID_OPTIONS before anything is counted.
import assert from 'node:assert/strict';
import {test} from 'node:test';

import {aggregate} from 'parallel-task-executor';

for (const extract of ['choice', 'number', {regex: '(\\w+)'}]) {
	test(`borda rejects extract ${JSON.stringify(extract)}`, () => {
		assert.throws(() => aggregate(['B', 'A', 'A'], {extract, rule: 'borda'}), error => {
			assert.equal(error.code, 'INVALID_OPTIONS');
			assert.equal(error.path, 'rule');
			assert.match(error.message, /ranking/);
			return true;
		});
	});
}

test('borda over ranked ballots counts every vote', () => {
	const result = aggregate(['A > B', 'B > A', 'A > B'], {rule: 'borda'});
	assert.equal(result.valid, 3);
	assert.equal(result.winner, 'A');
});
