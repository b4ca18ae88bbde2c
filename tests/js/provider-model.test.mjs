// Both providers against the real local model (llama.cpp serves the OpenAI and the
// Anthropic APIs), streamed and not.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {anthropic, complete, openai} from 'parallel-task-executor';
import {localModel} from '../support/model.mjs';

const prompt = 'What is 2+2? Answer with a number.';

for (const stream of [false, true]) {
	test(`openai provider on the local model, stream ${stream}`, async () => {
		const {baseURL, model} = await localModel();
		const deltas = [];
		const result = await complete({
			provider: openai({baseURL, model, maxTokens: 16, temperature: 0, stream}),
			prompt,
			onEvent: event => event.type === 'delta' && deltas.push(event.text),
		});
		assert.ok(result.text.trim().length > 0, 'the model answered');
		assert.ok(['stop', 'length'].includes(result.finishReason), result.finishReason);
		assert.ok(result.usage.inputTokens > 0);
		assert.ok(result.usage.outputTokens > 0);
		if (stream) {
			assert.ok(deltas.length > 1, 'the answer streamed in several pieces');
			assert.equal(deltas.join(''), result.text);
		} else {
			assert.equal(deltas.length, 0);
		}
	});

	test(`anthropic provider on the local model, stream ${stream}`, async () => {
		const {baseURL, model} = await localModel();
		const result = await complete({
			provider: anthropic({baseURL, model, apiKey: 'local-model-needs-no-key', maxTokens: 16, temperature: 0, stream}),
			prompt,
		});
		assert.ok(result.text.trim().length > 0, 'the model answered');
		assert.ok(['stop', 'length'].includes(result.finishReason), result.finishReason);
		assert.ok(result.usage.outputTokens > 0);
	});
}

test('a fixed seed gives the same answer twice on the local model', async () => {
	const {baseURL, model} = await localModel();
	const provider = openai({baseURL, model, maxTokens: 16, temperature: 0.8, seed: 42});
	const first = await complete({provider, prompt});
	const second = await complete({provider, prompt});
	assert.equal(first.text, second.text);
});
