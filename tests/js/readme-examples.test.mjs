// The README explains how to serve the demo page in www/ (`scripts/run.sh --serve`, which
// also starts the local model behind /v1). Its example of an options error is the error
// that the package raises for that plan, code and message alike.

import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {test} from 'node:test';
import {custom, section} from 'parallel-task-executor';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

test('readme explains serving the demo page', () => {
	assert.match(readme, /scripts\/run\.sh --serve/, 'README.md does not mention scripts/run.sh --serve');
	assert.match(readme, /demo page/i, 'README.md does not mention the demo page');
	assert.match(readme, /`www\/`/, 'README.md does not say where the demo page lives');
});

test('readme error example matches the real error', async () => {
	const example = /^(UNKNOWN_DEPENDENCY subtasks\[1\]\.dependsOn\[0\]: .*)$/m.exec(readme);
	assert.ok(example, 'README.md has no UNKNOWN_DEPENDENCY example line for subtasks[1].dependsOn[0]');
	// The README's quick-start plan, with a misspelt dependency of "api". The custom
	// provider is never called, because the plan is rejected before any request.
	const provider = custom(async () => {
		throw new Error('no request is expected');
	});
	const subtasks = [
		{id: 'schema', prompt: 'Design the products table.'},
		{id: 'api', prompt: 'Write the REST routes.', dependsOn: ['shema']},
		{id: 'ui', prompt: 'Sketch the catalog page.'},
	];

	const error = await section({provider, subtasks}).then(() => null, caught => caught);

	assert.ok(error, 'section resolved');
	assert.equal(error.code, 'UNKNOWN_DEPENDENCY');
	assert.equal(`${error.code} ${error.message}`, example[1]);
});
