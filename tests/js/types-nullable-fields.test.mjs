// index.d.ts accepts the values the runtime produces. A custom provider may return
// `usage: null`, as the README's nested-vote example does with `inner.usage`.
// The metrics that finishSection, finishVote and batch runs report as null
// (wallMs, parallelism, maxInFlight) are typed as nullable.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {mkdtemp, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {test} from 'node:test';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Type-checks one TypeScript source under --strict and returns tsc's output ('' when it passes). */
async function typeCheck(source) {
	const dir = await mkdtemp(path.join(tmpdir(), 'bd-types-'));
	try {
		await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
		const file = path.join(dir, 'check.ts');
		await writeFile(file, source);
		const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', file];
		const result = await promisify(execFile)(path.join(root, 'node_modules/.bin/tsc'), args, {cwd: root}).catch(error => error);
		return result.code ? `${result.stdout}${result.stderr}` : '';
	} finally {
		await rm(dir, {recursive: true, force: true});
	}
}

// custom() accepts usage: null at runtime; only the type rejects it.
test('README nested custom provider returning inner.usage type-checks', async () => {
	const output = await typeCheck(`
import {custom, openai, vote} from 'parallel-task-executor';
const model = openai({baseURL: 'http://127.0.0.1:8080/v1', model: 'm'});
export const decided = custom(async (request, {signal}) => {
	const inner = await vote({provider: model, messages: request.messages, voters: 3, extract: 'number', signal});
	return {text: inner.winner ?? '', usage: inner.usage};
});
`);
	assert.equal(output, '');
});

// finishSection and finishVote return metrics.wallMs, parallelism and maxInFlight as null.
test('metrics reported as null are typed as nullable', async () => {
	const output = await typeCheck(`
import type {SectionResult, VoteResult} from 'parallel-task-executor';
type Nullable<T> = null extends T ? true : false;
export const sectionWall: Nullable<SectionResult['metrics']['wallMs']> = true;
export const sectionParallelism: Nullable<SectionResult['metrics']['parallelism']> = true;
export const sectionInFlight: Nullable<SectionResult['metrics']['maxInFlight']> = true;
export const voteWall: Nullable<NonNullable<VoteResult['metrics']>['wallMs']> = true;
export const voteInFlight: Nullable<NonNullable<VoteResult['metrics']>['maxInFlight']> = true;
`);
	assert.equal(output, '');
});
