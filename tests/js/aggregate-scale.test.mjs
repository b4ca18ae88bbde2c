// Votes and tallies at sizes where a tally that rescans its answers would stall:
// 30,000 distinct answers, and an adaptive vote of 3,000 samples drawn a few per
// round. These check the counts at that size; how the cost per answer grows is
// measured in the benchmark suite (part 4).

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {aggregate, custom, vote} from 'parallel-task-executor';

test('aggregate counts 30,000 distinct answers once each', () => {
	const answers = Array.from({length: 30_000}, (_, i) => `answer ${i}`);
	const result = aggregate(answers);
	assert.equal(result.tally.length, 30_000);
	assert.ok(result.tally.every(entry => entry.votes === 1));
	assert.equal(result.winner, null);
	assert.equal(result.tie, true);
	assert.equal(result.samples.length, 30_000);
});

test('an adaptive vote that never settles draws every sample up to maxSamples', async () => {
	// Alternating answers never lead by 2 after an even number of samples, so the vote
	// runs to maxSamples, two samples per round.
	let calls = 0;
	const alternating = custom(async () => (calls++ % 2 === 0 ? 'a' : 'b'));
	const result = await vote({provider: alternating, prompt: 'q', voters: 2, rule: {aheadBy: 2}, maxSamples: 3000, concurrency: 8});
	assert.equal(result.valid, 3000);
	assert.equal(result.decided, false);
	assert.equal(result.winner, null);
	assert.deepEqual(result.tally.map(entry => [entry.answer, entry.votes]), [['a', 1500], ['b', 1500]]);
	assert.equal(result.rounds, 1500);
	assert.equal(result.roundDetails.length, 1500);
	assert.ok(result.roundDetails.every(round => round.samples.length === 2));
});

test('an adaptive vote decided late stops at the sample that settles it', async () => {
	// Alternating for 2,000 samples, then only 'a': 'a' leads by 2 after sample 2,002.
	let calls = 0;
	const provider = custom(async () => {
		const index = calls++;
		return index < 2000 && index % 2 === 1 ? 'b' : 'a';
	});
	const result = await vote({provider, prompt: 'q', voters: 2, rule: {aheadBy: 2}, maxSamples: 5000, concurrency: 1});
	assert.equal(result.winner, 'a');
	assert.equal(result.decided, true);
	assert.equal(result.decision.afterSamples, 2002);
	assert.equal(result.samples.filter(sample => sample.status === 'ok').length, 2002);
});
