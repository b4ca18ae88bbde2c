// Runs the main job (examples/main.mjs) as a user would: against the real local
// model it starts itself, against the scripted provider server for an endpoint
// given by flags, and with bad flags. Checks the printed tally, winner, timeline
// and speedup, that the model server it started is gone afterwards (also after
// Ctrl-C), and that an API key never appears in its output.

import assert from 'node:assert/strict';
import {execFileSync, spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, before, test} from 'node:test';
import {openaiError, openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const mainScript = path.join(repoRoot, 'examples', 'main.mjs');
const RUN_TIMEOUT_MS = 240_000;
const BAR = /^[█▏▎▍▌▋▊▉]+$/;

// The child must not pick up settings from the caller's environment.
function cleanEnvironment(extra = {}) {
	const env = {...process.env, ...extra};
	for (const name of Object.keys(env)) {
		if (name.startsWith('PTE_') && !(name in extra)) {
			delete env[name];
		}
	}

	if (!('OPENAI_API_KEY' in extra)) {
		delete env.OPENAI_API_KEY;
	}

	delete env.ANTHROPIC_API_KEY;
	return env;
}

/**
Runs examples/main.mjs with `args`. `onOutput(stdoutSoFar, child)` is called on
every stdout chunk. Resolves to { code, signal, stdout, stderr }.
*/
function runMain(args, {env = {}, onOutput, timeoutMs = RUN_TIMEOUT_MS} = {}) {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [mainScript, ...args], {cwd: repoRoot, env: cleanEnvironment(env), stdio: ['ignore', 'pipe', 'pipe']});
		let stdout = '';
		let stderr = '';
		let timedOut = false;
		let killTimer;
		// On a timeout, Ctrl-C first so that main.mjs stops its model server.
		const timer = setTimeout(() => {
			timedOut = true;
			child.kill('SIGINT');
			killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
		}, timeoutMs);
		child.stdout.on('data', chunk => {
			stdout += chunk;
			onOutput?.(stdout, child);
		});
		child.stderr.on('data', chunk => {
			stderr += chunk;
		});
		child.once('error', reject);
		child.once('close', (code, signal) => {
			clearTimeout(timer);
			clearTimeout(killTimer);
			if (timedOut) {
				reject(new Error(`main.mjs ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
				return;
			}

			resolve({code, signal, stdout, stderr});
		});
	});
}

function modelPid(stdout) {
	const match = /Local model ready at http:\/\/127\.0\.0\.1:(\d+)\/v1 \(pid (\d+),/.exec(stdout);
	assert.ok(match, `no "Local model ready" line in:\n${stdout}`);
	return {port: Number(match[1]), pid: Number(match[2])};
}

/** Lists processes (pid and command line) from ps. */
function processList() {
	return execFileSync('ps', ['-eo', 'pid=,args='], {encoding: 'utf8'})
		.split('\n')
		.map(line => /^\s*(\d+)\s+(.*)$/.exec(line))
		.filter(Boolean)
		.map(([, pid, args]) => ({pid: Number(pid), args}));
}

function assertModelGone({pid, port}) {
	const left = processList().filter(entry => entry.pid === pid || (entry.args.includes('serve.py') && entry.args.includes(String(port))));
	assert.deepEqual(left, [], `the model server started by main.mjs is still running: ${JSON.stringify(left)}`);
}

function linesBetween(stdout, first, last) {
	const lines = stdout.split('\n');
	const start = lines.findIndex(line => line.startsWith(first));
	assert.ok(start !== -1, `no line starting with ${JSON.stringify(first)} in:\n${stdout}`);
	const end = lines.findIndex((line, index) => index > start && line.startsWith(last));
	assert.ok(end !== -1, `no line starting with ${JSON.stringify(last)} after ${JSON.stringify(first)}`);
	return lines.slice(start + 1, end);
}

function lineMatching(stdout, pattern) {
	const match = stdout.split('\n').map(line => pattern.exec(line)).find(Boolean);
	assert.ok(match, `no line matches ${pattern} in:\n${stdout}`);
	return match;
}

/** Parses the tally: "  <answer>  <bar> <votes>[  ← winner]". */
function parseTally(stdout) {
	const lines = linesBetween(stdout, 'Tally (votes per answer)', 'Winner:');
	if (lines.length === 1 && lines[0] === '  (no answer was counted)') {
		return [];
	}

	return lines.map(line => {
		const match = /^ {2}(.+?) {2}(\S+) (\d+(?:\.\d+)?)( {2}← winner)?$/.exec(line);
		assert.ok(match, `tally line has an unexpected form: ${JSON.stringify(line)}`);
		assert.match(match[2], BAR, `tally bar is not made of block characters: ${JSON.stringify(line)}`);
		return {answer: match[1], bar: match[2], votes: Number(match[3]), winner: Boolean(match[4])};
	});
}

/** Parses the timeline rows: "  <id> │<cells>│ <times>". */
function parseTimeline(stdout) {
	return linesBetween(stdout, 'Timeline (', 'Metrics:')
		.map(line => /^ {2}(\S+)\s+│(.*)│ (.*)$/.exec(line))
		.filter(Boolean)
		.map(([, id, cells]) => {
			const chars = [...cells];
			const filled = chars.map((character, index) => (character === ' ' ? -1 : index)).filter(index => index !== -1);
			return {id, width: chars.length, first: Math.min(...filled), last: Math.max(...filled)};
		});
}

test('main job --help lists every option with defaults', async () => {
	const {code, stdout, stderr} = await runMain(['--help']);
	assert.equal(code, 0, stderr);
	for (const flag of ['--provider', '--base-url', '--model', '--prompt', '--voters', '--rule', '--concurrency', '--max-tokens', '--temperature', '--only', '--serve', '--port']) {
		assert.match(stdout, new RegExp(`^ {2}${flag}\\b`, 'm'), `--help does not list ${flag}`);
	}

	assert.match(stdout, /--voters N\s+samples in the first round of the vote \(default: 9\)/);
	assert.match(stdout, /\(default:\s+ahead-by-2\)/);
	assert.match(stdout, /\(default:\s+0\.8\)/);
	assert.match(stdout, /OPENAI_API_KEY or ANTHROPIC_API_KEY/);
	assert.match(stdout, /milliseconds/);
	assert.doesNotMatch(stdout, /Starting the local model/);
});

test('main job rejects unknown and invalid flags', async () => {
	const unknown = await runMain(['--voterz', '3']);
	assert.equal(unknown.code, 2);
	assert.match(unknown.stderr, /^error: unknown option --voterz; run with --help/m);
	assert.doesNotMatch(unknown.stdout, /Starting the local model/);

	const nearMiss = await runMain(['--max_tokens', '3']);
	assert.equal(nearMiss.code, 2);
	assert.match(nearMiss.stderr, /did you mean --max-tokens\?/);

	const badRule = await runMain(['--rule', 'best-of-3']);
	assert.equal(badRule.code, 2);
	assert.match(badRule.stderr, /--rule must be plurality, majority, ahead-by-K, first-to-K or at-least-K/);

	const missingValue = await runMain(['--voters']);
	assert.equal(missingValue.code, 2);
	assert.match(missingValue.stderr, /--voters needs a value/);

	const noBaseUrl = await runMain(['--provider', 'openai', '--model', 'gpt']);
	assert.equal(noBaseUrl.code, 2);
	assert.match(noBaseUrl.stderr, /--base-url is required with --provider openai/);
});

test('main job runs the vote and sectioning on the local model', async () => {
	const {code, stdout, stderr} = await runMain(['--voters', '5', '--max-tokens', '16', '--section-max-tokens', '24', '--concurrency', '3']);
	assert.equal(code, 0, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
	const model = modelPid(stdout);
	assertModelGone(model);

	// The tally: one line per answer, bars proportional to the votes, and the
	// counts sum to the counted votes in the agreement line.
	const tally = parseTally(stdout);
	const [, leaderVotes, counted] = lineMatching(stdout, /^Agreement: \d+% \((\d+(?:\.\d+)?) of (\d+) counted votes, margin [\d.]+\)$/).map(Number);
	assert.equal(tally.reduce((sum, entry) => sum + entry.votes, 0), counted);
	for (const entry of tally) {
		const top = Math.max(...tally.map(other => other.votes));
		const cells = [...entry.bar].length;
		assert.ok(Math.abs(cells - ((entry.votes / top) * 32)) <= 1, `bar of ${entry.answer} has ${cells} cells for ${entry.votes} of ${top} votes`);
	}

	// The winner line names the answer marked in the tally, with the most votes.
	const winner = lineMatching(stdout, /^Winner: (.+?)( \(tie\))?$/)[1];
	if (winner === 'none') {
		assert.ok(tally.every(entry => !entry.winner));
	} else {
		const marked = tally.filter(entry => entry.winner);
		assert.deepEqual(marked.map(entry => entry.answer), [winner]);
		assert.equal(marked[0].votes, leaderVotes);
		assert.equal(leaderVotes, Math.max(...tally.map(entry => entry.votes)));
	}

	const decided = lineMatching(stdout, /^Decided: (yes|no)$/)[1] === 'yes';
	const decision = lineMatching(stdout, /^Decision point: (.*)$/)[1];
	assert.match(decision, decided ? /^after \d+ samples \(round \d+, at \d+\.\d+ s\)$|^after all / : /^none: /);
	lineMatching(stdout, /^Usage: \d+ input \+ \d+ output tokens, \d+ requests, wall \d+\.\d+ s$/);

	// Every sample is reported once by the progress lines, and the summary lines
	// list the same cancelled, red-flagged and abstained samples.
	const progress = [...stdout.matchAll(/^ {2}sample #(\d+) (ok|red-flagged|abstained|failed|cancelled)\b/gm)].map(match => ({index: Number(match[1]), status: match[2]}));
	const indexes = progress.map(entry => entry.index).sort((a, b) => a - b);
	assert.deepEqual(indexes, indexes.map((_, i) => i), `progress lines do not cover samples 0..n-1 once each: ${indexes}`);
	assert.equal(progress.filter(entry => entry.status === 'ok').length, counted);
	for (const [label, status] of [['Cancelled', 'cancelled'], ['Red-flagged', 'red-flagged'], ['Abstained', 'abstained'], ['Failed', 'failed']]) {
		const listed = Number(lineMatching(stdout, new RegExp(`^${label}: (\\d+)`))[1]);
		assert.equal(listed, progress.filter(entry => entry.status === status).length, `${label} count`);
	}

	// Sectioning: every output, the merged output, one timeline row per subtask.
	for (const id of ['origin', 'makeup', 'importance', 'summary']) {
		assert.match(stdout, new RegExp(`^ {2}subtask ${id} ok in \\d+\\.\\d+ s$`, 'm'));
		assert.match(stdout, new RegExp(`^ {2}${id} +\\S`, 'm'), `no output line for ${id}`);
	}

	assert.match(stdout, /^Merged output \(merge: "ordered"\)\n {2}\S/m);
	const rows = parseTimeline(stdout);
	assert.deepEqual(rows.map(row => row.id), ['origin', 'makeup', 'importance', 'summary']);
	assert.equal(new Set(rows.map(row => row.width)).size, 1, 'timeline rows differ in width');
	for (const row of rows) {
		assert.ok(Number.isFinite(row.first), `timeline row ${row.id} has no bar`);
	}

	// The summary waits for the three facts, so its bar starts where theirs end.
	const summary = rows.at(-1);
	const facts = rows.slice(0, 3);
	assert.ok(summary.first >= Math.max(...facts.map(row => row.last)), `summary starts at cell ${summary.first} before the facts end: ${JSON.stringify(rows)}`);
	// The three facts run at once: each starts before any of them ends.
	assert.ok(Math.max(...facts.map(row => row.first)) < Math.min(...facts.map(row => row.last)), `the independent subtasks did not overlap: ${JSON.stringify(rows)}`);
	assert.match(stdout, /^Metrics: wall \d+\.\d+ s, busy \d+\.\d+ s, parallelism \d+\.\d+ \(expected 2\.00\), critical path \d+\.\d+ s$/m);
	assert.match(stdout, /^Phases: 1: origin, makeup, importance → 2: summary$/m);

	// The speedup: the ratio of the two printed wall times.
	const parallel = Number(lineMatching(stdout, /^ {2}in parallel \(concurrency 3\): (\d+\.\d+) s for \d+ output tokens$/)[1]);
	const sequential = Number(lineMatching(stdout, /^ {2}one after another \(concurrency 1\): (\d+\.\d+) s for \d+ output tokens$/)[1]);
	const [, ratio, sequentialAgain, parallelAgain] = lineMatching(stdout, /^Speedup: (\d+\.\d+)x \((\d+\.\d+) s one after another \/ (\d+\.\d+) s in parallel\)$/).map(Number);
	assert.equal(sequentialAgain, sequential);
	assert.equal(parallelAgain, parallel);
	assert.ok(parallel > 0);
	assert.ok(sequential > 0);
	assert.ok(Math.abs(ratio - (sequential / parallel)) <= (0.02 * ratio) + 0.02, `speedup ${ratio} is not ${sequential} / ${parallel}`);
});

test('main job stops the model on SIGINT', async () => {
	let sent = false;
	const {code, stdout, stderr} = await runMain(['--only', 'section', '--section-max-tokens', '200'], {
		onOutput(soFar, child) {
			// Interrupt once the sectioning calls are in flight.
			if (!sent && soFar.includes('== Sectioning ==')) {
				sent = true;
				setTimeout(() => child.kill('SIGINT'), 300);
			}
		},
	});
	assert.ok(sent, `the run never reached the sectioning job:\n${stdout}\n${stderr}`);
	assert.equal(code, 130, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
	assert.match(stderr, /SIGINT: stopping/);
	assert.doesNotMatch(stdout, /^Speedup:/m);
	assertModelGone(modelPid(stdout));
});

test('main job on a failing endpoint exits 1 without leaking the key', async () => {
	const server = await startScriptedServer();
	try {
		server.setDefault(openaiError(401, 'Incorrect API key provided'));
		const key = 'sk-test-main-job-0123456789abcdef';
		const {code, stdout, stderr} = await runMain(
			['--base-url', `${server.url}/v1`, '--model', 'scripted-model', '--voters', '3', '--only', 'vote'],
			{env: {OPENAI_API_KEY: key}},
		);
		assert.equal(code, 1, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
		assert.match(stderr, /^error [A-Z_]+( \(HTTP 401\))?: \S/m);
		assert.match(stdout, /^Endpoint: openai model scripted-model at http:\/\/127\.0\.0\.1:\d+\/v1, key from OPENAI_API_KEY$/m);
		assert.doesNotMatch(stdout, /Starting the local model/);
		assert.ok(!stdout.includes(key), 'the API key appears on stdout');
		assert.ok(!stderr.includes(key), 'the API key appears on stderr');
		assert.ok(!stdout.includes(key.slice(-10)), 'part of the API key appears on stdout');
		assert.ok(!stderr.includes(key.slice(-10)), 'part of the API key appears on stderr');

		const requests = server.requests();
		assert.ok(requests.length >= 1);
		assert.equal(requests[0].headers.authorization, `Bearer ${key}`);
		assert.equal(requests[0].body.model, 'scripted-model');
	} finally {
		await server.close();
	}
});

let scripted;
before(async () => {
	scripted = await startScriptedServer();
});
after(async () => {
	await scripted?.close();
});

test('main job votes on an endpoint given by flags', async () => {
	scripted.reset();
	scripted.setDefault([openaiOk('The answer is 4.', {delayMs: 20}), openaiOk('I think it is 5.', {delayMs: 20}), openaiOk('4', {delayMs: 20})]);
	const {code, stdout, stderr} = await runMain(
		['--base-url', `${scripted.url}/v1`, '--model', 'scripted-model', '--voters', '3', '--rule', 'plurality', '--only', 'vote', '--concurrency', '2', '--max-tokens', '40'],
	);
	assert.equal(code, 0, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
	assert.match(stdout, /no key \(OPENAI_API_KEY is not set\)/);
	const tally = parseTally(stdout);
	assert.deepEqual(tally.map(entry => [entry.answer, entry.votes, entry.winner]), [['4', 2, true], ['5', 1, false]]);
	// The leader's bar is 32 cells; half the votes draw half as many.
	assert.deepEqual(tally.map(entry => entry.bar), ['█'.repeat(32), '█'.repeat(16)]);
	assert.match(stdout, /^Winner: 4$/m);
	assert.match(stdout, /^Agreement: 67% \(2 of 3 counted votes, margin 1\)$/m);
	assert.equal(scripted.requests().length, 3);
	assert.ok(scripted.stats().maxInFlight <= 2, `more than --concurrency 2 requests in flight: ${scripted.stats().maxInFlight}`);
	for (const request of scripted.requests()) {
		assert.equal(request.body.max_tokens, 40);
		assert.equal(request.body.temperature, 0.8);
		assert.equal(request.headers.authorization, undefined);
	}
});
