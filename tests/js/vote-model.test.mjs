// vote() on the real local model: sampled answers vary, and every sample is
// accounted for in the result.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {openai, vote} from 'parallel-task-executor';
import {localModel} from '../support/model.mjs';

test('vote on the local model reports a winner or a tie', async () => {
	const {baseURL, model} = await localModel();
	const provider = openai({baseURL, model, temperature: 0.8, maxTokens: 24, seed: 7});
	const events = [];
	const result = await vote({
		provider,
		prompt: 'What is 2+2? Answer with a number.',
		voters: 9,
		extract: 'number',
		timeoutMs: 60_000,
		onEvent: event => events.push(event.type),
	});

	assert.equal(result.samples.length, 9);
	const statuses = ['valid', 'abstained', 'redFlagged', 'failed', 'cancelled'];
	assert.equal(statuses.reduce((sum, key) => sum + result[key], 0), 9, JSON.stringify(result.samples.map(s => s.status)));
	assert.equal(result.failed, 0, JSON.stringify(result.samples.map(s => s.error)));

	const texts = result.samples.filter(sample => sample.text !== null).map(sample => sample.text);
	assert.ok(new Set(texts).size >= 2, `the samples vary: ${JSON.stringify(texts)}`);
	const seeds = new Set(result.samples.map(sample => sample.index));
	assert.equal(seeds.size, 9);

	if (result.tie) {
		assert.equal(result.winner, null);
		assert.equal(result.decided, false);
	} else {
		assert.equal(typeof result.winner, 'string');
		assert.equal(result.counts[result.winner], result.tally[0].votes);
		assert.ok(result.margin > 0);
	}

	assert.equal(result.valid, Object.values(result.counts).reduce((sum, votes) => sum + votes, 0));
	assert.ok(events.includes('run-end'));
	// Cancelled samples end with a `sample` event too.
	assert.equal(events.filter(type => type === 'sample').length, 9);
	assert.equal(events.filter(type => type === 'cancelled').length, result.cancelled);
});
