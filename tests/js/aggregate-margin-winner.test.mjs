// margin and agreement describe the same answer. In aggregate, an { aheadBy } or
// { firstTo } winner may trail in the full tally of the answers given after it
// won, and then the result must not pair one answer's margin with another's share.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

test('aheadBy margin and agreement refer to one answer', () => {
	// "a" gets 2 ahead after six answers; "b" wins the four answers after that.
	const answers = ['a', 'b', 'b', 'a', 'a', 'a', 'b', 'b', 'b', 'b'];
	const result = aggregate(answers, {rule: {aheadBy: 2}});
	assert.equal(result.winner, 'a');
	const total = result.counts.a + result.counts.b;
	const described = Math.abs((result.counts.a / total) - result.agreement) < 1e-6 ? 'a' : 'b';
	const other = described === 'a' ? 'b' : 'a';
	assert.equal(result.margin, result.counts[described] - result.counts[other]);
});

test('aggregate reports where a sequential rule was met', () => {
	// 'a' first leads by 2 after the sixth answer.
	const result = aggregate(['a', 'b', 'a', 'b', 'a', 'a', 'b'], {rule: {aheadBy: 2}});
	assert.equal(result.winner, 'a');
	assert.equal(result.decision.afterSamples, 6);
	assert.equal(result.decision.atMs, null);
	const plain = aggregate(['a', 'b', 'a'], {rule: 'plurality'});
	assert.equal(plain.decision, null);
});
