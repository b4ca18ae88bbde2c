// A ranked ballot names each candidate once. A ballot given to aggregate as an
// array with a repeated label counts like the same ballot given as text ("A > A >
// B" reads as A > B), and no candidate ever gets negative Borda points.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

test('array ballot with repeat matches text', () => {
	const options = {extract: 'ranking', rule: 'borda'};
	const fromText = aggregate(['A > A > B', 'B > A'], options);
	const fromArray = aggregate([{answer: ['A', 'A', 'B']}, {answer: ['B', 'A']}], options);
	assert.deepEqual(fromArray.counts, fromText.counts);
	assert.equal(fromArray.winner, fromText.winner);
	assert.equal(fromArray.tie, fromText.tie);
});

test('array ballot with repeat: no negative points', () => {
	const result = aggregate([{answer: ['A', 'A', 'B']}], {extract: 'ranking', rule: 'borda'});
	for (const [answer, points] of Object.entries(result.counts)) {
		assert.ok(points >= 0, `${answer} has ${points} points`);
	}
});
