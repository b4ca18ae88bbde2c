// The main job rejects every --rule, --voters and --max-samples combination that the
// package's vote rejects, as a usage error: exit status 2 and an "error: ..." line naming
// the flag, before the model starts or any request is made. That covers K out of the
// package's range, a K that the samples can never reach, and --max-samples below
// --voters or with a rule that takes no top-ups. Every combination the package takes
// passes.

import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {test} from 'node:test';
import {custom, vote} from 'parallel-task-executor';
import {parseOptions} from '../../examples/lib/options.mjs';
import {startScriptedServer} from '../support/scripted-server.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const mainScript = path.join(repoRoot, 'examples', 'main.mjs');

function runMain(args, extraEnv = {}) {
	const env = {...process.env};
	for (const name of Object.keys(env)) {
		if (name.startsWith('PTE_') || name.endsWith('_API_KEY')) {
			delete env[name];
		}
	}

	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [mainScript, ...args], {cwd: repoRoot, env: {...env, ...extraEnv}, stdio: ['ignore', 'pipe', 'pipe']});
		let stdout = '';
		let stderr = '';
		const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
		child.stdout.on('data', chunk => {
			stdout += chunk;
		});
		child.stderr.on('data', chunk => {
			stderr += chunk;
		});
		child.once('error', reject);
		child.once('close', code => {
			clearTimeout(timer);
			resolve({code, stdout, stderr});
		});
	});
}

test('main job rejects rule K above the package range', async () => {
	const server = await startScriptedServer();
	try {
		for (const rule of ['ahead-by-2000000', 'first-to-99999999999999999999', 'at-least-5000000']) {
			// eslint-disable-next-line no-await-in-loop
			const {code, stdout, stderr} = await runMain(['--base-url', `${server.url}/v1`, '--model', 'm', '--only', 'vote', '--rule', rule]);
			assert.equal(code, 2, `--rule ${rule}: exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
			assert.match(stderr, /^error: --rule /m, `--rule ${rule}: stderr:\n${stderr}`);
			assert.doesNotMatch(stdout, /== Vote ==/, `--rule ${rule}: the vote started`);
		}

		assert.equal(server.requests().length, 0);
	} finally {
		await server.close();
	}
});

test('main job rejects combinations the vote rejects', async () => {
	const server = await startScriptedServer();
	const cases = [
		{args: ['--rule', 'at-least-5', '--voters', '3'], error: /^error: --rule at-least-5 can never be reached by 3 voters\b.*raise --voters$/m},
		{args: ['--rule', 'plurality', '--max-samples', '5'], error: /^error: --max-samples applies only to ahead-by-K and first-to-K\b/m},
		{args: ['--rule', 'ahead-by-2', '--voters', '9', '--max-samples', '5'], error: /^error: --max-samples 5 is below the 9 samples of the first round \(--voters\)/m},
		{args: ['--rule', 'first-to-200'], error: /^error: --rule first-to-200 can never be reached within the default cap of 100 samples for 9 voters, because each sample casts one vote; raise --max-samples to at least 200$/m},
		{args: ['--rule', 'first-to-50', '--max-samples', '40'], error: /^error: --rule first-to-50 can never be reached within --max-samples 40\b/m},
		{args: [], env: {PTE_RULE: 'at-least-10'}, error: /^error: PTE_RULE at-least-10 can never be reached by 9 voters\b/m},
	];
	try {
		for (const {args, env, error} of cases) {
			const label = `${JSON.stringify(env ?? {})} ${args.join(' ')}`;
			// eslint-disable-next-line no-await-in-loop
			const {code, stdout, stderr} = await runMain(['--base-url', `${server.url}/v1`, '--model', 'm', '--only', 'vote', ...args], env);
			assert.equal(code, 2, `${label}: exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
			assert.match(stderr, error, `${label}: stderr:\n${stderr}`);
			assert.equal(stdout, '', `${label}: the job printed something`);
		}

		assert.equal(server.requests().length, 0);
	} finally {
		await server.close();
	}
});

/** Returns the package's error for these vote settings, or null when it takes them. */
async function packageError({voters, rule, maxSamples}) {
	const provider = custom(async () => '4');
	const controller = new AbortController();
	controller.abort();
	try {
		await vote({provider, prompt: 'What is 2+2?', voters, rule, maxSamples, extract: 'number', signal: controller.signal});
	} catch (error) {
		return error.code === 'ABORTED' ? null : error;
	}

	return null;
}

test('rule checks agree with the package', async () => {
	const rules = ['plurality', 'majority'];
	for (const k of [1, 2, 3, 9, 10, 27, 99, 100, 101, 150, 1000, 100_000, 100_001, 1_000_000]) {
		rules.push(`ahead-by-${k}`, `first-to-${k}`, `at-least-${k}`);
	}

	let checked = 0;
	for (const voters of [1, 2, 5, 9, 40, 100]) {
		for (const rule of rules) {
			for (const maxSamples of [null, 1, voters, voters + 1, 100, 150, 1000, 100_000]) {
				const argv = ['--rule', rule, '--voters', String(voters)];
				if (maxSamples !== null) {
					argv.push('--max-samples', String(maxSamples));
				}

				let options = null;
				let usageError = null;
				try {
					options = parseOptions(argv, {});
				} catch (error) {
					usageError = error;
				}

				const match = /^(ahead-by|first-to|at-least)-(\d+)$/.exec(rule);
				const key = match ? {'ahead-by': 'aheadBy', 'first-to': 'firstTo', 'at-least': 'atLeast'}[match[1]] : null;
				const packageRule = match ? {[key]: Number(match[2])} : rule;
				// eslint-disable-next-line no-await-in-loop
				const rejected = await packageError({voters, rule: packageRule, maxSamples: maxSamples ?? undefined});
				const label = argv.join(' ');
				if (rejected) {
					assert.ok(usageError, `${label}: the package rejects it (${rejected.message}) but the command line takes it`);
					assert.equal(usageError.name, 'UsageError', `${label}: ${usageError.message}`);
				} else {
					assert.equal(usageError, null, `${label}: the package takes it but the command line rejects it: ${usageError?.message}`);
					assert.deepEqual(options.rule, packageRule, label);
				}

				checked++;
			}
		}
	}

	assert.ok(checked > 1000, `only ${checked} combinations checked`);
});
