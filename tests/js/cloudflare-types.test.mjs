// The hand-written cloudflare.d.ts compiles against a worker's typical use and rejects
// misuse (each `@ts-expect-error` in tests/runtimes/cloudflare/types must meet an error).
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {test} from 'node:test';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('cloudflare.d.ts type tests compile', async () => {
	const result = await promisify(execFile)(`${root}node_modules/.bin/tsc`, ['-p', 'tests/runtimes/cloudflare/types'], {cwd: root}).catch(error => error);
	assert.equal(result.code ?? 0, 0, `tsc reported:\n${result.stdout}${result.stderr}`);
});
