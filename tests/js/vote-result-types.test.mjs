// VoteResult in pkg/index.d.ts declares `runId` (the id the run's events carry) and
// `roundDetails` (which samples each round drew, and when), which vote() and the
// Workflow helper fill in, so TypeScript code reads them without a cast.

import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('VoteResult declares runId and roundDetails', async () => {
	const dir = await mkdtemp(path.join(tmpdir(), 'pte-vote-types-'));
	try {
		const declarations = path.join(root, 'pkg', 'index.js');
		const source = [
			`import type {VoteResult} from ${JSON.stringify(declarations)};`,
			'export function read(result: VoteResult): unknown[] {',
			'\treturn [result.runId, result.roundDetails];',
			'}',
			'',
		].join('\n');
		const file = path.join(dir, 'check.mts');
		await writeFile(file, source);
		const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
		const args = ['--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--lib', 'ES2022,DOM', file];
		const outcome = await promisify(execFile)(tsc, args, {cwd: root}).catch(error => error);
		assert.equal(outcome.code ?? 0, 0, `tsc reported:\n${outcome.stdout}${outcome.stderr}`);
	} finally {
		await rm(dir, {recursive: true, force: true});
	}
});
