// Packs the npm package, installs the tarball into a fresh app, and runs the README's
// first example there against the real local model.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {after, test} from 'node:test';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import {localModel} from '../support/model.mjs';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const work = await mkdtemp(path.join(tmpdir(), 'pte-pack-'));
after(() => rm(work, {recursive: true, force: true}));

test('the packed package installs and runs the README example', async () => {
	const {stdout} = await run('npm', ['pack', '--json', '--pack-destination', work], {cwd: path.join(root, 'pkg')});
	const [{filename, files}] = JSON.parse(stdout);
	const packed = files.map(file => file.path).sort();
	assert.deepEqual(packed, [
		'LICENSE-APACHE',
		'LICENSE-MIT',
		'README.md',
		'batch.js',
		'browser.js',
		'cloudflare.d.ts',
		'cloudflare.js',
		'cloudflare/job-object.js',
		'cloudflare/limits.js',
		'cloudflare/queues.js',
		'cloudflare/shared.js',
		'cloudflare/workflows.js',
		'core.js',
		'index.d.ts',
		'node.js',
		'package.json',
		'wasm/parallel_task_executor.js',
		'wasm/parallel_task_executor_bg.wasm',
		'workerd.js',
	]);

	const app = path.join(work, 'app');
	await run('mkdir', ['-p', app]);
	await writeFile(path.join(app, 'package.json'), JSON.stringify({
		name: 'readme-app',
		private: true,
		type: 'module',
		dependencies: {'parallel-task-executor': `file:${path.join(work, filename)}`},
	}));
	await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {cwd: app});

	const readme = await readFile(path.join(root, 'README.md'), 'utf8');
	const example = readme.match(/```js\n([\s\S]*?)```/)[1];
	assert.match(example, /section\(/);
	assert.match(example, /vote\(/);
	assert.match(example, /aggregate\(/);
	const {baseURL} = await localModel();
	const program = example.replace('http://127.0.0.1:8080/v1', baseURL)
		+ '\nconsole.log("AGGREGATE", aggregate(["42", "42.0", "The answer is 42.", "41"], {extract: "number"}).winner);\n';
	await writeFile(path.join(app, 'main.mjs'), program);
	const result = await run('node', ['main.mjs'], {cwd: app, timeout: 120_000});
	assert.match(result.stdout, /AGGREGATE 42/);
	assert.equal(result.stderr, '');
});
