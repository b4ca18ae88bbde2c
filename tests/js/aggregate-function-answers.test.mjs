// Bad options throw a TypeError with code INVALID_OPTIONS and the option's path
// (docs/api.md, Errors). For aggregate, a function among the answers is named by
// its index and field, like every other wrong answer.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {aggregate} from 'parallel-task-executor';

const cases = [
	['an answer that is a function', ['a', () => 1], 'answers[1]'],
	['text that is a function', ['a', {text: () => 1}], 'answers[1].text'],
	['a voter that is a function', ['a', {answer: 'a', voter: () => 1}], 'answers[1].voter'],
	['a weight that is a function', ['a', {answer: 'a', weight: () => 1}], 'answers[1].weight'],
];

for (const [name, answers, path] of cases) {
	test(`aggregate names the path of ${name}`, () => {
		assert.throws(() => aggregate(answers), error => {
			assert.ok(error instanceof TypeError);
			assert.equal(error.code, 'INVALID_OPTIONS');
			assert.equal(error.path, path);
			assert.ok(error.message.includes(path), error.message);
			return true;
		});
	});
}
