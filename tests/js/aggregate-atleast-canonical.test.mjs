// rule { atLeast: k, answer } compares answer in the extractor's canonical form, as
// it already does for extract: "number" ("4.0" counts the votes for "4"). For
// "json" that is sorted keys and canonical numbers, for "ranking" the parsed ballot.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

test('atLeast JSON answer, other key order', () => {
	const result = aggregate(['{"b":1,"a":2}', '{"a":2,"b":1}'], {extract: 'json', rule: {atLeast: 2, answer: '{"b":1,"a":2}'}});
	assert.equal(result.passed, true);
});

test('atLeast JSON answer written 1.0', () => {
	const result = aggregate(['{"a":1}', '{"a":1.0}'], {extract: 'json', rule: {atLeast: 2, answer: '{"a":1.0}'}});
	assert.equal(result.passed, true);
});

test('atLeast jsonPath answer "1.0"', () => {
	const result = aggregate(['{"a":1}', '{"a":1.0}'], {extract: {jsonPath: '$.a'}, rule: {atLeast: 2, answer: '1.0'}});
	assert.equal(result.passed, true);
});

test('atLeast ranking answer "A>B"', () => {
	const result = aggregate(['A > B', 'A>B'], {extract: 'ranking', rule: {atLeast: 2, answer: 'A>B'}});
	assert.equal(result.passed, true);
});
