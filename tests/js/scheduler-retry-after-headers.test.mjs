// A 429 that carries both `Retry-After` and `retry-after-ms`: the retry waits for the
// longer of the two, so neither header is undercut.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import {complete, openai} from 'parallel-task-executor';

test('retry waits for the longer of both headers', async () => {
	const startedAt = [];
	const fetch = async () => {
		startedAt.push(performance.now());
		if (startedAt.length === 1) {
			const headers = {'content-type': 'application/json', 'retry-after': '1', 'retry-after-ms': '50'};
			return new Response(JSON.stringify({error: {message: 'rate limited', type: 'rate_limit_error'}}), {status: 429, headers});
		}

		const body = {choices: [{index: 0, message: {role: 'assistant', content: 'ok'}, finish_reason: 'stop'}]};
		return new Response(JSON.stringify(body), {status: 200, headers: {'content-type': 'application/json'}});
	};

	const provider = openai({baseURL: 'http://127.0.0.1:9/v1', model: 'm', fetch});
	const result = await complete({provider, prompt: 'x', maxRetries: 1, retry: {baseDelayMs: 1, maxDelayMs: 2}});
	assert.equal(result.text, 'ok');
	assert.equal(startedAt.length, 2);
	const waitedMs = startedAt[1] - startedAt[0];
	assert.ok(waitedMs >= 1000, `retried after ${Math.round(waitedMs)} ms, before Retry-After: 1`);
});
