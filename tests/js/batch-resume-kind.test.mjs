// resumeBatch with a section's handle and a vote's options (or the reverse) rejects
// with INVALID_OPTIONS saying that the handle is from one kind of run and the options
// from the other, before any request.

import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {openai, resumeBatch} from 'parallel-task-executor';
import {startBatchServer} from '../support/batch-server.mjs';

let server;
let provider;

before(async () => {
	server = await startBatchServer();
	provider = openai({baseURL: `${server.url}/v1`, model: 'gpt-test', apiKey: 'sk-test'});
});

after(async () => {
	await server.close();
});

const batchOf = customIds => ({provider: 'openai', id: 'batch_1', phase: 0, customIds, inputFileId: 'file-1', status: 'in_progress'});

test('resumeBatch names a section handle with vote options', async () => {
	const handle = {version: 1, kind: 'section', batches: [batchOf(['subtask-a'])]};
	const options = {provider, prompt: 'q', voters: 2, extract: 'number'};

	const error = await resumeBatch(handle, options).then(() => assert.fail('resumeBatch should reject'), caught => caught);

	assert.equal(error.code, 'INVALID_OPTIONS');
	assert.doesNotMatch(error.message, /unknown option/);
	assert.match(error.message, /section/);
	assert.match(error.message, /vote/);
});

test('resumeBatch names a vote handle with section options', async () => {
	const handle = {version: 1, kind: 'vote', batches: [batchOf(['sample-0'])]};
	const options = {provider, subtasks: [{id: 'a', prompt: 'A'}]};

	const error = await resumeBatch(handle, options).then(() => assert.fail('resumeBatch should reject'), caught => caught);

	assert.equal(error.code, 'INVALID_OPTIONS');
	assert.doesNotMatch(error.message, /unknown option/);
	assert.match(error.message, /section/);
	assert.match(error.message, /vote/);
	assert.equal(server.requests().length, 0, 'nothing reached the server');
});
