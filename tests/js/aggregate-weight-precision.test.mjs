// A result agrees with its own winner: when a weighted vote is decided with no tie,
// counts give the winner more weight than any other answer and margin is above 0.
// Three voters weighted 1/3 against one weighted 1 must not show equal counts.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

test('weighted counts and margin match winner', () => {
	const third = 1 / 3;
	const result = aggregate([
		{answer: 'a', weight: third},
		{answer: 'a', weight: third},
		{answer: 'a', weight: third},
		{answer: 'b', weight: 1},
	]);
	if (result.tie) {
		assert.equal(result.counts.a, result.counts.b);
		return;
	}

	const loser = result.winner === 'a' ? 'b' : 'a';
	assert.ok(result.counts[result.winner] > result.counts[loser], `counts ${JSON.stringify(result.counts)} but winner ${result.winner}`);
	assert.ok(result.margin > 0, `margin ${result.margin} but winner ${result.winner}`);
});
