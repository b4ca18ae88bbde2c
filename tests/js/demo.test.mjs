// Drives the demo page in headless Chromium: `node examples/main.mjs --serve`
// serves www/ and pkg/ and passes /v1/* to the real local model it starts. The
// page runs a vote and a sectioning job against that model, scores candidates
// with a judge, scores typed answers offline with `aggregate`, and calls
// another endpoint (the scripted server) with a key that must never reach the
// demo server. Saves a screenshot of the vote to tests/artifacts/demo-vote.png.

import assert from 'node:assert/strict';
import {execFileSync, spawn} from 'node:child_process';
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, before, test} from 'node:test';
import {chromium} from 'playwright-core';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = path.join(repoRoot, 'tests', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const START_TIMEOUT_MS = 90_000;
const RUN_TIMEOUT_MS = 120_000;

let server;
let serverOutput = '';
let serverErrors = '';
let demoUrl;
let model;
let browser;
let page;
let profileDir;

/** Every request the browser sent: url, method, headers and body. */
const requests = [];

function startDemo() {
	return new Promise((resolve, reject) => {
		const env = {...process.env};
		for (const name of Object.keys(env)) {
			if (name.startsWith('PTE_')) {
				delete env[name];
			}
		}

		server = spawn(process.execPath, [path.join(repoRoot, 'examples', 'main.mjs'), '--serve', '--port', '0', '--concurrency', '4'], {cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe']});
		const timer = setTimeout(() => reject(new Error(`the demo server did not start within ${START_TIMEOUT_MS} ms:\n${serverOutput}\n${serverErrors}`)), START_TIMEOUT_MS);
		server.stdout.on('data', chunk => {
			serverOutput += chunk;
			const page = /^Demo page: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(serverOutput);
			const local = /Local model ready at http:\/\/127\.0\.0\.1:(\d+)\/v1 \(pid (\d+),/.exec(serverOutput);
			if (page && local) {
				clearTimeout(timer);
				model = {port: Number(local[1]), pid: Number(local[2])};
				resolve(page[1]);
			}
		});
		server.stderr.on('data', chunk => {
			serverErrors += chunk;
		});
		server.once('exit', code => {
			clearTimeout(timer);
			reject(new Error(`the demo server exited with ${code}:\n${serverOutput}\n${serverErrors}`));
		});
	});
}

function processList() {
	return execFileSync('ps', ['-eo', 'pid=,args='], {encoding: 'utf8'})
		.split('\n')
		.map(line => /^\s*(\d+)\s+(.*)$/.exec(line))
		.filter(Boolean)
		.map(([, pid, args]) => ({pid: Number(pid), args}));
}

/** Sends one raw GET, so that paths such as /%2e%2e/ reach the server unchanged. */
function rawGet(urlPath) {
	const {port} = new URL(demoUrl);
	return new Promise((resolve, reject) => {
		const request = http.request({host: '127.0.0.1', port, path: urlPath, method: 'GET'}, response => {
			let body = '';
			response.on('data', chunk => {
				body += chunk;
			});
			response.on('end', () => resolve({status: response.statusCode, headers: response.headers, body}));
		});
		request.on('error', reject);
		request.end();
	});
}

async function openPage() {
	await page.goto(demoUrl);
	await page.waitForSelector('body[data-ready="true"]', {timeout: 30_000});
}

async function waitForState(view) {
	await page.waitForSelector(`#view-${view}:is([data-state="done"], [data-state="error"])`, {timeout: RUN_TIMEOUT_MS});
	const state = await page.getAttribute(`#view-${view}`, 'data-state');
	const message = await page.locator(`#${view}-message`).innerText();
	assert.equal(state, 'done', `the ${view} view ended in state ${state}: ${message}`);
}

before(async () => {
	demoUrl = await startDemo();
	profileDir = mkdtempSync(path.join(os.tmpdir(), 'pte-demo-profile-'));
	browser = await chromium.launchPersistentContext(profileDir, {
		executablePath: CHROMIUM,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
		viewport: {width: 1280, height: 900},
	});
	page = browser.pages()[0] ?? await browser.newPage();
	browser.on('request', async request => {
		const entry = {url: request.url(), method: request.method(), headers: {}, body: request.postData() ?? ''};
		requests.push(entry);
		entry.headers = await request.allHeaders().catch(() => ({}));
	});
	page.on('pageerror', error => {
		serverErrors += `\npage error: ${error.message}`;
	});
});

after(async () => {
	await browser?.close();
	if (profileDir) {
		rmSync(profileDir, {recursive: true, force: true});
	}

	// Normally the SIGINT test has stopped the server already. Otherwise stop it
	// the same way, and kill both processes if that fails.
	if (server && server.exitCode === null && server.signalCode === null) {
		const exited = new Promise(resolve => {
			server.once('exit', resolve);
		});
		server.kill('SIGINT');
		const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
		await exited;
		clearTimeout(timer);
	}

	if (model && processList().some(entry => entry.pid === model.pid && entry.args.includes('serve.py'))) {
		process.kill(model.pid, 'SIGKILL');
	}
});

test('demo server serves the page, the package and the model', async () => {
	const index = await rawGet('/');
	assert.equal(index.status, 200);
	assert.match(index.headers['content-type'], /^text\/html/);
	assert.match(index.body, /"parallel-task-executor": "\/pkg\/browser\.js"/);

	const entry = await rawGet('/pkg/browser.js');
	assert.equal(entry.status, 200);
	assert.match(entry.headers['content-type'], /^text\/javascript/);
	const wasm = await rawGet('/pkg/wasm/parallel_task_executor_bg.wasm');
	assert.equal(wasm.status, 200);
	assert.equal(wasm.headers['content-type'], 'application/wasm');

	// Only files a browser needs, and nothing outside www/ and pkg/.
	assert.equal((await rawGet('/pkg/package.json')).status, 404);
	assert.equal((await rawGet('/%2e%2e/scripts/run.sh')).status, 404);
	assert.equal((await rawGet('/pkg/..%2f..%2fscripts/run.sh')).status, 404);
	assert.equal((await rawGet('/../package.json')).status, 404);

	const config = JSON.parse((await rawGet('/config.json')).body);
	assert.equal(config.provider, 'local');
	assert.equal(config.model, 'smollm2');
	assert.equal(config.concurrency, 4);

	// /v1/* reaches the local model.
	const response = await fetch(new URL('/v1/chat/completions', demoUrl), {
		method: 'POST',
		headers: {'content-type': 'application/json'},
		body: JSON.stringify({model: 'smollm2', messages: [{role: 'user', content: 'Say hi'}], max_tokens: 4}),
	});
	assert.equal(response.status, 200);
	const body = await response.json();
	assert.equal(typeof body.choices[0].message.content, 'string');
});

test('demo vote draws live bars and marks the winner', async () => {
	await openPage();
	await page.fill('#vote-voters', '5');
	await page.fill('#vote-max-tokens', '16');

	// Record the bars each time they change, and whether the final summary was there yet.
	await page.evaluate(() => {
		globalThis.barSnapshots = [];
		new MutationObserver(() => {
			const votes = [...document.querySelectorAll('#vote-bars .bar-row')].map(row => Number(row.dataset.votes));
			globalThis.barSnapshots.push({sum: votes.reduce((a, b) => a + b, 0), final: Boolean(document.querySelector('#vote-summary .verdict'))});
		}).observe(document.querySelector('#vote-bars'), {childList: true, subtree: true});
	});
	await page.click('#vote-run');
	await waitForState('vote');

	const snapshots = await page.evaluate(() => globalThis.barSnapshots);
	assert.ok(snapshots.some(snapshot => !snapshot.final && snapshot.sum >= 1), `no bar was drawn while the calls ran: ${JSON.stringify(snapshots)}`);

	const bars = await page.$$eval('#vote-bars .bar-row', rows => rows.map(row => ({answer: row.dataset.answer, votes: Number(row.dataset.votes), winner: row.classList.contains('winner')})));
	const counted = Number(await page.getAttribute('#vote-summary [data-valid]', 'data-valid'));
	assert.ok(counted >= 1, 'no sample was counted');
	assert.equal(bars.reduce((sum, bar) => sum + bar.votes, 0), counted);

	const winner = await page.getAttribute('#vote-summary .verdict', 'data-winner');
	assert.ok(winner, 'no winner is shown');
	assert.equal(await page.locator('#vote-summary .verdict-winner').innerText(), winner);
	assert.deepEqual(bars.filter(bar => bar.winner).map(bar => bar.answer), [winner]);

	// Every sample is listed once with a status, and cancelled samples are labelled as such.
	const samples = await page.$$eval('#vote-samples li.sample', items => items.map(item => ({index: Number(item.dataset.index), status: item.dataset.status})));
	const total = Number(await page.getAttribute('#vote-summary', 'data-samples'));
	assert.equal(samples.length, total);
	assert.deepEqual(samples.map(sample => sample.index).sort((a, b) => a - b), samples.map((_, i) => i));
	assert.ok(samples.every(sample => sample.status !== 'running'));
	assert.equal(samples.filter(sample => sample.status === 'ok').length, counted);
	const cancelled = Number(await page.getAttribute('#vote-summary [data-cancelled]', 'data-cancelled'));
	assert.equal(samples.filter(sample => sample.status === 'cancelled').length, cancelled);
	assert.equal(await page.locator('#vote-running li').count(), 0);
	for (const index of samples.filter(sample => sample.status === 'cancelled').map(sample => sample.index)) {
		assert.match(await page.locator(`#vote-samples li[data-index="${index}"] .badge`).innerText(), /cancelled/);
	}

	// The decision point sits after the samples that decided the vote, and the cancelled samples follow it.
	const order = await page.$$eval('#vote-samples > li', items => items.map(item => (item.classList.contains('decision-point') ? 'decision' : item.dataset.status)));
	if (order.includes('decision')) {
		const after = order.slice(order.indexOf('decision') + 1);
		const before = order.slice(0, order.indexOf('decision'));
		assert.ok(!before.includes('cancelled'), `a cancelled sample is listed before the decision point: ${order}`);
		assert.ok(after.every(status => status === 'cancelled'), `a counted sample is listed after the decision point: ${order}`);
	}

	// A counted sample's reply opens from its summary line.
	const first = page.locator('#vote-samples li[data-status="ok"]').first();
	await first.locator('summary').click();
	assert.ok((await first.locator('pre').innerText()).trim().length > 0);

	mkdirSync(artifacts, {recursive: true});
	await page.screenshot({path: path.join(artifacts, 'demo-vote.png'), fullPage: true});
});

test('demo sectioning draws one lane per call', async () => {
	await openPage();
	await page.click('[role="tab"][data-view="section"]');
	await page.fill('#section-max-tokens', '24');
	const ids = await page.$$eval('#subtask-list .subtask-id', inputs => inputs.map(input => input.value));
	assert.deepEqual(ids, ['origin', 'makeup', 'importance', 'summary']);
	assert.match(await page.locator('#subtask-list .subtask-row').nth(3).locator('.subtask-deps').innerText(), /uses origin, makeup, importance/);

	await page.click('#section-run');
	// Lanes fill while the calls run.
	await page.waitForSelector('#timeline .segment.running', {timeout: RUN_TIMEOUT_MS});
	await waitForState('section');

	const lanes = await page.$$eval('#timeline .lane', elements => elements.map(lane => ({
		id: lane.dataset.id,
		status: lane.dataset.status,
		segments: [...lane.querySelectorAll('.segment')].map(segment => {
			const box = segment.getBoundingClientRect();
			return {left: box.left, right: box.right, ok: segment.classList.contains('ok')};
		}),
	})));
	assert.deepEqual(lanes.map(lane => lane.id), ids);
	for (const lane of lanes) {
		assert.equal(lane.status, 'ok', `lane ${lane.id}`);
		assert.equal(lane.segments.length, 1, `lane ${lane.id} should show one call`);
		assert.ok(lane.segments[0].ok);
	}

	// The summary's call starts after the three it depends on have finished.
	const summary = lanes[3].segments[0];
	const factsEnd = Math.max(...lanes.slice(0, 3).map(lane => lane.segments[0].right));
	assert.ok(summary.left >= factsEnd - 2, `summary starts at x=${summary.left}, before the facts end at x=${factsEnd}`);

	const outputs = await page.$$eval('#section-outputs details', elements => elements.map(element => ({id: element.dataset.id, text: element.querySelector('pre')?.textContent ?? ''})));
	assert.deepEqual(outputs.map(output => output.id), ids);
	assert.ok(outputs.every(output => output.text.trim().length > 0));
	const merged = await page.locator('#section-merged').innerText();
	for (const output of outputs) {
		assert.ok(merged.includes(output.text.trim()), `the merged output lacks ${output.id}`);
	}

	assert.match(await page.locator('#section-metrics').innerText(), /Phases\s+1: origin, makeup, importance → 2: summary/);
});

test('demo scores candidates with a judge', async () => {
	await openPage();
	await page.click('[role="tab"][data-view="score"]');
	await page.fill('#score-candidates', '2');
	await page.fill('#score-max-tokens', '24');
	await page.click('#score-run');
	await waitForState('score');

	const header = await page.$$eval('#score-matrix thead th', cells => cells.map(cell => cell.textContent));
	assert.deepEqual(header, ['Candidate', 'accuracy (40)', 'clarity (30)', 'style (30)', 'Total', 'Pass']);
	const rows = await page.$$eval('#score-matrix tbody tr', elements => elements.map(row => ({total: row.dataset.total, cells: [...row.querySelectorAll('td')].map(cell => cell.textContent)})));
	assert.ok(rows.length >= 1, 'no candidate in the score matrix');
	for (const row of rows) {
		if (row.total !== '') {
			const total = Number(row.total);
			assert.ok(total >= 0, `total ${row.total}`);
			assert.ok(total <= 100, `total ${row.total}`);
			const [accuracy, clarity, style] = row.cells.slice(1, 4).map(Number);
			assert.ok(Math.abs(total - ((accuracy * 4) + (clarity * 3) + (style * 3))) < 1e-6, `total ${total} does not weigh ${row.cells}`);
		}
	}

	assert.match(await page.locator('#score-summary').innerText(), /Usage/);
});

test('demo scores typed answers offline', async () => {
	await openPage();
	await page.click('[role="tab"][data-view="score"]');
	const before = requests.length;
	await page.check('#score-mode-offline');
	await page.waitForSelector('#score-matrix tbody tr');

	const totals = async () => page.$$eval('#score-matrix tbody tr', rows => rows.map(row => [row.querySelector('.candidate span').textContent, Number(row.dataset.total), row.dataset.passed]));
	assert.deepEqual(await totals(), [
		['Fresh bread, baked before you wake.', 79, 'true'],
		['Bread. Cakes. Coffee. Open at 6.', 75, 'true'],
		['We knead you.', 72, 'false'],
	]);
	assert.equal(await page.getAttribute('#score-summary .verdict', 'data-winner'), 'Fresh bread, baked before you wake.');
	assert.equal(await page.getAttribute('#score-summary .verdict', 'data-passed'), 'true');
	assert.equal(await page.locator('#score-matrix tr.winner .badge-winner').count(), 1);

	// Typing updates the matrix at once: a higher accuracy score for the second answer wins.
	await page.locator('#answers-table tbody tr').nth(1).locator('.answer-score').nth(0).fill('10');
	assert.equal(await page.getAttribute('#score-summary .verdict', 'data-winner'), 'We knead you.');
	assert.deepEqual((await totals())[0], ['We knead you.', 88, 'true']);

	// A pass score above every total leaves the winner failing.
	await page.fill('#pass-score', '90');
	assert.equal(await page.getAttribute('#score-summary .verdict', 'data-passed'), 'false');
	assert.match(await page.locator('#score-summary').innerText(), /does not pass/);

	// A score out of range is reported with the package's error.
	await page.locator('#answers-table tbody tr').nth(0).locator('.answer-score').nth(0).fill('11');
	assert.match(await page.locator('#score-message').innerText(), /^INVALID_OPTIONS: answers\[0\]\.scores: score for "accuracy" must be a number from 0 to 10, got 11$/);
	assert.equal(await page.getAttribute('#view-score', 'data-state'), 'error');

	assert.equal(requests.length, before, `offline scoring sent requests: ${JSON.stringify(requests.slice(before).map(request => request.url))}`);
});

test('demo sends the API key only to the entered endpoint', async () => {
	const scripted = await startScriptedServer();
	const key = 'sk-demo-page-key-5f3a9c1e77';
	try {
		scripted.setDefault([openaiOk('The answer is 4.'), openaiOk('It is 5.'), openaiOk('4')]);
		await openPage();
		const start = requests.length;
		await page.check('#endpoint-custom');
		await page.selectOption('#api-kind', 'openai');
		await page.fill('#base-url', `${scripted.url}/v1`);
		await page.fill('#model', 'scripted-model');
		await page.fill('#api-key', key);
		await page.fill('#vote-voters', '3');
		await page.selectOption('#vote-rule', 'plurality');
		await page.click('#vote-run');
		await waitForState('vote');
		assert.equal(await page.getAttribute('#vote-summary .verdict', 'data-winner'), '4');

		// Plurality may stop once two votes agree, before the last request is sent.
		const received = scripted.requests();
		assert.ok(received.length >= 2, `the endpoint received ${received.length} requests`);
		for (const request of received) {
			assert.equal(request.headers.authorization, `Bearer ${key}`);
			assert.equal(request.body.model, 'scripted-model');
		}

		// Nothing the page sent to its own server carries the key.
		const demoOrigin = new URL(demoUrl).origin;
		const sent = requests.slice(start);
		assert.ok(sent.some(request => request.url.startsWith(scripted.url)));
		for (const request of sent.filter(request => request.url.startsWith(demoOrigin))) {
			const text = `${request.url} ${JSON.stringify(request.headers)} ${request.body}`;
			assert.ok(!text.includes(key), `the key went to the demo server: ${request.method} ${request.url}`);
		}

		assert.ok(!serverOutput.includes(key), 'the key appears in the demo server output');
		assert.ok(!serverErrors.includes(key), 'the key appears in the demo server errors');
		assert.ok(!(await page.evaluate(() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage}) + document.cookie)).includes(key), 'the page stored the key');
	} finally {
		await scripted.close();
	}
});

test('demo server stops the model on SIGINT', async () => {
	assert.ok(model, 'the model pid is unknown');
	const exited = new Promise(resolve => {
		server.once('exit', (code, signal) => resolve({code, signal}));
	});
	server.kill('SIGINT');
	const {code} = await exited;
	assert.equal(code, 130, `exit ${code}\n${serverOutput}\n${serverErrors}`);
	const left = processList().filter(entry => entry.pid === model.pid || (entry.args.includes('serve.py') && entry.args.includes(String(model.port))));
	assert.deepEqual(left, [], 'the model server is still running');
	await assert.rejects(fetch(demoUrl), 'the demo server still answers');
});
