// extract: "text" compares answers case- and space-insensitively, with full Unicode
// case folding (final sigma, dotted I) and Unicode normalization (NFC): the precomposed
// "café" (U+00E9) and the decomposed "café" (e + U+0301) are one answer.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {aggregate} from 'parallel-task-executor';

const COMPOSED = 'caf\u00e9';
const DECOMPOSED = 'cafe\u0301';

test('text tally merges NFC and NFD forms', () => {
	const result = aggregate([COMPOSED, DECOMPOSED, 'tea']);
	assert.equal(result.tie, false);
	assert.equal(result.winner?.normalize('NFC'), COMPOSED);
	assert.equal(result.tally.length, 2);
	assert.equal(result.tally[0].votes, 2);
});
