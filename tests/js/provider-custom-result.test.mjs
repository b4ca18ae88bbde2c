// A custom provider function returns `{ text, usage?, finishReason? }` or a string. An
// object without a `text` key, such as the `{ response }` the Workers AI binding
// returns, is a mistake in the function, so the call fails with PROVIDER_ERROR and a
// message that names the keys it got. `text: null` stays valid (a filtered reply).

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {complete, custom} from 'parallel-task-executor';

const WITHOUT_TEXT = [
	['the Workers AI shape', {response: 'Paris'}],
	['an OpenAI message', {content: 'Paris', role: 'assistant'}],
	['an empty object', {}],
];

for (const [label, returned] of WITHOUT_TEXT) {
	test(`custom result without text: ${label}`, async () => {
		const provider = custom(async () => returned);
		await assert.rejects(complete({provider, prompt: 'x', maxRetries: 0}), error => {
			assert.equal(error.code, 'PROVIDER_ERROR');
			assert.match(error.message, /text/);
			return true;
		});
	});
}
