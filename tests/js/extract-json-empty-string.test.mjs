// A reply with no answer is an abstention and never a vote for "" (docs/api.md,
// vote). That holds for extract: "json" and { jsonPath } too: an empty or blank
// string value is no answer, so "" cannot win.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate, custom, vote} from 'parallel-task-executor';

test('jsonPath to an empty string abstains', () => {
	const result = aggregate(['{"a": ""}', '{"a": "  "}', '{"a": "x"}'], {extract: {jsonPath: '$.a'}});
	assert.equal(result.winner, 'x');
	assert.equal(result.abstained, 2);
	assert.equal(result.counts[''], undefined);
});

test('json reply that is an empty string abstains', () => {
	const result = aggregate(['""', '""', '"x"'], {extract: 'json'});
	assert.equal(result.winner, 'x');
	assert.equal(result.abstained, 2);
});

test('vote with jsonPath never elects ""', async () => {
	const replies = ['{"a": ""}', '{"a": ""}', '{"a": "x"}'];
	let next = 0;
	const provider = custom(async () => replies[next++ % replies.length]);
	const result = await vote({provider, prompt: 'q', voters: 3, concurrency: 1, extract: {jsonPath: '$.a'}});
	assert.notEqual(result.winner, '');
	assert.equal(result.abstained, 2);
});
