// aggregate() makes no run, so its result carries `runId: null`, as index.d.ts states.
// Results hold absent values as null, never undefined, so the field is present.
import assert from 'node:assert/strict';
import {test} from 'node:test';

import {aggregate} from 'parallel-task-executor';

test('aggregate result runId is null', () => {
	const result = aggregate(['42', '42.0', 'The answer is 42.', '41'], {extract: 'number'});
	assert.ok(Object.hasOwn(result, 'runId'), 'runId is missing from the result');
	assert.equal(result.runId, null);
});
