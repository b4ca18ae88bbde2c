// The main job prints exactly one line per cancelled call, after Ctrl-C in the sectioning
// job and when a vote settles early. A cancelled call may end with a subtask-end or sample
// event with status "cancelled" and a cancelled event, in either order, or with only one
// of them. The progress printer writes a line for the first and counts the call once.

import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {test} from 'node:test';
import {createProgress} from '../../examples/lib/progress.mjs';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const mainScript = path.join(repoRoot, 'examples', 'main.mjs');

test('main job prints each cancelled subtask once', async () => {
	const server = await startScriptedServer();
	server.setDefault(openaiOk('A fact.', {delayMs: 10_000}));
	const env = {...process.env};
	for (const name of Object.keys(env)) {
		if (name.startsWith('PTE_') || name.endsWith('_API_KEY')) {
			delete env[name];
		}
	}

	try {
		const {code, stdout} = await new Promise((resolve, reject) => {
			const child = spawn(process.execPath, [mainScript, '--base-url', `${server.url}/v1`, '--model', 'm', '--only', 'section'], {cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe']});
			let out = '';
			let sent = false;
			const killTimer = setTimeout(() => child.kill('SIGKILL'), 20_000);
			// Ctrl-C once the three independent subtasks are in flight.
			const poll = setInterval(() => {
				const inFlight = server.requests().filter(record => record.outcome === null).length;
				if (!sent && out.includes('Subtasks:') && inFlight === 3) {
					sent = true;
					child.kill('SIGINT');
				}
			}, 20);
			child.stdout.on('data', chunk => {
				out += chunk;
			});
			child.stderr.resume();
			child.once('error', reject);
			child.once('close', exitCode => {
				clearInterval(poll);
				clearTimeout(killTimer);
				resolve({code: exitCode, stdout: out});
			});
		});

		assert.equal(code, 130, stdout);
		for (const id of ['origin', 'makeup', 'importance', 'summary']) {
			const lines = stdout.split('\n').filter(line => new RegExp(`^ {2}subtask ${id} cancelled\\b`).test(line));
			assert.equal(lines.length, 1, `subtask ${id} is listed ${lines.length} times:\n${stdout}`);
		}
	} finally {
		await server.close();
	}
});

test('main job prints each cancelled sample once', async () => {
	const server = await startScriptedServer();
	// The first two samples reply at once and settle first-to-2, and the rest hang.
	let served = 0;
	server.setDefault(() => {
		served++;
		return served <= 2 ? openaiOk('4') : openaiOk('4', {delayMs: 10_000});
	});
	const env = {...process.env};
	for (const name of Object.keys(env)) {
		if (name.startsWith('PTE_') || name.endsWith('_API_KEY')) {
			delete env[name];
		}
	}

	try {
		const {code, stdout} = await new Promise((resolve, reject) => {
			const child = spawn(process.execPath, [mainScript, '--base-url', `${server.url}/v1`, '--model', 'm', '--only', 'vote', '--voters', '5', '--rule', 'first-to-2', '--max-samples', '5', '--concurrency', '5'], {cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe']});
			let out = '';
			const killTimer = setTimeout(() => child.kill('SIGKILL'), 20_000);
			child.stdout.on('data', chunk => {
				out += chunk;
			});
			child.stderr.resume();
			child.once('error', reject);
			child.once('close', exitCode => {
				clearTimeout(killTimer);
				resolve({code: exitCode, stdout: out});
			});
		});

		assert.equal(code, 0, stdout);
		const cancelledCount = Number(/^Cancelled: (\d+)/m.exec(stdout)?.[1]);
		assert.equal(cancelledCount, 3, stdout);
		const lines = stdout.split('\n').filter(line => /^ {2}sample #\d+ cancelled\b/.test(line));
		assert.equal(lines.length, 3, `cancelled samples are listed ${lines.length} times:\n${stdout}`);
		const samples = lines.map(line => /#(\d+)/.exec(line)[1]);
		assert.equal(new Set(samples).size, 3, `a sample is listed twice:\n${stdout}`);
	} finally {
		await server.close();
	}
});

/** Feeds `events` to a progress printer on a plain stream; returns the printed lines. */
function printedLines(events, {title = 'run', total = 3} = {}) {
	let text = '';
	const stream = {isTTY: false, write(chunk) {
		text += chunk;
	}};
	const progress = createProgress({stream, title, total});
	for (const event of events) {
		progress.onEvent(event);
	}

	progress.finish();
	return text.split('\n').filter(line => line !== '');
}

test('progress prints a cancelled sample once', () => {
	const start = {type: 'attempt-start', sample: 2, voter: 2, attempt: 1};
	const attemptEnd = {type: 'attempt-end', sample: 2, voter: 2, attempt: 1, status: 'cancelled', durationMs: 12};
	const sample = {type: 'sample', sample: 2, voter: 2, status: 'cancelled', answer: null, reason: null, error: null};
	const cancelled = {type: 'cancelled', sample: 2, voter: 2};
	const orders = {
		'attempt-end, sample, cancelled': [start, attemptEnd, sample, cancelled],
		'cancelled, sample': [start, cancelled, sample],
		'cancelled only': [start, cancelled],
		'sample only': [start, sample],
	};
	for (const [name, events] of Object.entries(orders)) {
		const lines = printedLines(events);
		assert.deepEqual(lines.filter(line => /sample #2\b/.test(line)), ['  sample #2 cancelled'], `${name}:\n${lines.join('\n')}`);
	}
});

test('progress prints a cancelled subtask once', () => {
	const subtaskEnd = {type: 'subtask-end', subtask: 'origin', status: 'cancelled', startedMs: 100, finishedMs: 300};
	const cancelled = {type: 'cancelled', subtask: 'origin'};
	const orders = {
		'subtask-end, cancelled': [subtaskEnd, cancelled],
		'cancelled, subtask-end': [cancelled, subtaskEnd],
		'cancelled only': [cancelled],
	};
	for (const [name, events] of Object.entries(orders)) {
		const lines = printedLines(events);
		assert.equal(lines.filter(line => /subtask origin\b/.test(line)).length, 1, `${name}:\n${lines.join('\n')}`);
		assert.match(lines[0], /^ {2}subtask origin cancelled( in 0\.20 s)?$/, name);
	}
});

test('progress counts a cancelled call once', () => {
	let text = '';
	const stream = {isTTY: true, columns: 200, write(chunk) {
		text += chunk;
	}};
	const progress = createProgress({stream, title: 'vote', total: 2});
	progress.onEvent({type: 'attempt-start', sample: 0});
	progress.onEvent({type: 'attempt-start', sample: 1});
	progress.onEvent({type: 'sample', sample: 0, status: 'ok', answer: '4'});
	progress.onEvent({type: 'sample', sample: 1, status: 'cancelled'});
	progress.onEvent({type: 'cancelled', sample: 1});
	const status = text.split('\r\u001B[2K').at(-1);
	assert.equal(status, 'vote: 1/2 done · 0 in flight · 1 cancelled');
});
