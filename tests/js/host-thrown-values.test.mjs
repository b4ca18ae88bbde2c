// Values thrown or rejected by user code that are not Error objects: null, numbers,
// plain objects such as `{retryable: true}`, a thrown Response, and abort reasons
// other than an Error or a string. JavaScript allows all of them; each one becomes a
// rejection with a `code` (or a warning, for onEvent) whose message describes the
// value. Each case runs in a child process, so a crash fails one test instead of
// ending the test runner.

import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {test} from 'node:test';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
Runs `body` as an ES module in a child Node process in the repository root, where
`m` is the package's namespace. Returns the exit status and the last line of
stdout parsed as JSON (the body prints its outcome with `report(...)`).
*/
function runIsolated(body) {
	const source = [
		'const m = await import("parallel-task-executor");',
		'const report = value => console.log(JSON.stringify(value));',
		body,
	].join('\n');
	const child = spawnSync(process.execPath, ['--input-type=module', '-e', source], {cwd: root, encoding: 'utf8', timeout: 30_000});
	const lines = child.stdout.trim().split('\n').filter(Boolean);
	let outcome = null;
	try {
		outcome = lines.length > 0 ? JSON.parse(lines.at(-1)) : null;
	} catch {
		outcome = null;
	}

	return {status: child.status, outcome, stderr: child.stderr.slice(0, 1500)};
}

const CUSTOM_REJECTIONS = [
	['null', 'null'],
	['undefined', 'undefined'],
	['a number', '42'],
	['a plain object without message', '{code: "E_UPSTREAM"}'],
	['a null-prototype object', 'Object.create(null)'],
	['a Response', 'new Response("busy", {status: 503})'],
];

for (const [label, thrown] of CUSTOM_REJECTIONS) {
	test(`custom rejection with ${label} rejects`, () => {
		const run = runIsolated(`
			const provider = m.custom(async () => { throw ${thrown}; });
			try {
				await m.complete({provider, prompt: 'x', maxRetries: 0});
				report({settled: 'resolved'});
			} catch (error) {
				report({settled: 'rejected', code: error.code});
			}
		`);
		assert.equal(run.status, 0, `the process crashed:\n${run.stderr}`);
		assert.deepEqual(run.outcome, {settled: 'rejected', code: 'PROVIDER_ERROR'});
	});
}

test('custom retryable plain object is retried', () => {
	// docs/api.md: throw an error with `retryable: true` to have the call retried.
	const run = runIsolated(`
		let calls = 0;
		const provider = m.custom(async () => {
			calls += 1;
			throw {retryable: true, retryAfterMs: 5};
		});
		try {
			await m.complete({provider, prompt: 'x', maxRetries: 2, retry: {baseDelayMs: 1, maxDelayMs: 2}});
			report({settled: 'resolved', calls});
		} catch (error) {
			report({settled: 'rejected', code: error.code, calls});
		}
	`);
	assert.equal(run.status, 0, `the process crashed:\n${run.stderr}`);
	assert.deepEqual(run.outcome, {settled: 'rejected', code: 'PROVIDER_ERROR', calls: 3});
});

const ABORT_REASONS = [
	['null', 'null'],
	['a plain object', '{code: "USER_LEFT"}'],
	['a number', '7'],
];

for (const [label, reason] of ABORT_REASONS) {
	test(`abort reason ${label} rejects ABORTED`, () => {
		const run = runIsolated(`
			const controller = new AbortController();
			const provider = m.custom(() => new Promise(() => {}));
			setTimeout(() => controller.abort(${reason}), 20);
			try {
				await m.complete({provider, prompt: 'x', signal: controller.signal});
				report({settled: 'resolved'});
			} catch (error) {
				report({settled: 'rejected', code: error.code, name: error.name, causeIsReason: Object.is(error.cause, controller.signal.reason)});
			}
		`);
		assert.equal(run.status, 0, `the process crashed:\n${run.stderr}`);
		assert.deepEqual(run.outcome, {settled: 'rejected', code: 'ABORTED', name: 'AbortError', causeIsReason: true});
	});
}

test('fetch rejecting plain object rejects', () => {
	const run = runIsolated(`
		const provider = m.openai({
			baseURL: 'http://127.0.0.1:9/v1',
			model: 'm',
			fetch: async () => { throw {code: 'ECONNREFUSED'}; },
		});
		try {
			await m.complete({provider, prompt: 'x', maxRetries: 0});
			report({settled: 'resolved'});
		} catch (error) {
			report({settled: 'rejected', code: error.code});
		}
	`);
	assert.equal(run.status, 0, `the process crashed:\n${run.stderr}`);
	assert.deepEqual(run.outcome, {settled: 'rejected', code: 'PROVIDER_ERROR'});
});

test('onEvent plain object throw warns', () => {
	const run = runIsolated(`
		const provider = m.custom(async () => 'done');
		try {
			const result = await m.section({
				provider,
				subtasks: [{id: 'a', prompt: 'x'}],
				onEvent() { throw {code: 'SINK_DOWN'}; },
			});
			report({settled: 'resolved', warned: result.warnings.some(w => w.code === 'on-event-threw')});
		} catch (error) {
			report({settled: 'rejected', code: error.code ?? null, message: error.message});
		}
	`);
	assert.equal(run.status, 0, `the process crashed:\n${run.stderr}`);
	assert.deepEqual(run.outcome, {settled: 'resolved', warned: true});
});

test('extract plain object throw abstains', () => {
	// An Error thrown by extract makes the sample abstain with reason "extract-failed",
	// but a plain object makes aggregate throw an Error without a code.
	const run = runIsolated(`
		try {
			const result = m.aggregate(['1', '2'], {extract() { throw {code: 'PARSE'}; }});
			report({settled: 'returned', reasons: result.samples.map(s => s.reason)});
		} catch (error) {
			report({settled: 'threw', code: error.code ?? null, message: error.message});
		}
	`);
	assert.equal(run.status, 0, `the process crashed:\n${run.stderr}`);
	assert.deepEqual(run.outcome, {settled: 'returned', reasons: ['extract-failed', 'extract-failed']});
});
