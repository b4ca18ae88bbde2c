// Runs the benchmark suite at its tiny size (scripts/bench.sh --quick) and checks
// that every part of the report is present and well formed. No speed is asserted:
// the figures of a quick run measure nothing.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SECTIONS = [
	'Machine',
	'1. Scheduling overhead',
	'2. Size',
	'3. Start-up',
	'4. Aggregation throughput',
	'5. Vote efficiency',
	'6. Real model',
	'7. Memory',
	'8. Cloudflare Queues',
];

let work;
let markdown;
let report;

/** Runs a command to its end and resolves with its exit code and output, whatever the code. */
function runToEnd(command, args, options) {
	return new Promise(resolve => {
		execFile(command, args, {...options, maxBuffer: 64 * 1024 * 1024}, (error, stdout, stderr) => {
			resolve({code: error ? (error.code ?? 1) : 0, stdout, stderr});
		});
	});
}

before(async () => {
	work = await mkdtemp(path.join(tmpdir(), 'pte-bench-smoke-'));
	const out = path.join(work, 'BENCHMARKS.md');
	const json = path.join(work, 'results.json');
	const {code, stderr} = await runToEnd('bash', [path.join(root, 'scripts', 'bench.sh'), '--quick', '--out', out, '--json', json], {cwd: root, timeout: 900_000});
	assert.equal(code, 0, `scripts/bench.sh --quick failed with ${code}:\n${stderr.slice(-4000)}`);
	markdown = await readFile(out, 'utf8');
	report = JSON.parse(await readFile(json, 'utf8'));
}, {timeout: 960_000});

after(() => work && rm(work, {recursive: true, force: true}));

/** Returns the text of the section under `## title`, up to the next `## `. */
function section(title) {
	const start = markdown.indexOf(`\n## ${title}\n`);
	assert.notEqual(start, -1, `the report has no "## ${title}" section`);
	const end = markdown.indexOf('\n## ', start + 1);
	return markdown.slice(start, end === -1 ? undefined : end);
}

/** Returns the tables of a text as arrays of rows of cells, header first, separator dropped. */
function tables(text) {
	const found = [];
	let current = null;
	for (const line of text.split('\n')) {
		if (line.startsWith('|')) {
			current ??= [];
			current.push(line.slice(1, -1).split('|').map(cell => cell.trim()));
		} else if (current) {
			found.push(current);
			current = null;
		}
	}

	if (current) {
		found.push(current);
	}

	return found.map(rows => rows.filter(row => !row.every(cell => /^-+$/.test(cell))));
}

const isPositive = value => Number.isFinite(value) && value > 0;

test('report has every section in order', () => {
	const headings = markdown.split('\n').filter(line => line.startsWith('## ')).map(line => line.slice(3));
	assert.deepEqual(headings, SECTIONS);
	assert.match(markdown, /^# Benchmarks\n/);
	assert.match(markdown, /Reproduce: `scripts\/bench\.sh --quick`/);
});

test('report has no failed part or broken value', () => {
	assert.doesNotMatch(markdown, /FAILED/);
	for (const broken of ['NaN', 'undefined', 'Infinity', '[object Object]', 'n/a']) {
		assert.ok(!markdown.includes(broken), `the report contains "${broken}"`);
	}

	for (const [name, part] of Object.entries(report.parts)) {
		assert.equal(part.error, undefined, `part ${name} failed: ${part.error}`);
	}
});

test('every table row has as many cells as its header', () => {
	const all = tables(markdown);
	assert.ok(all.length >= 10, `expected at least 10 tables, found ${all.length}`);
	for (const rows of all) {
		const [header, ...body] = rows;
		assert.ok(body.length > 0, `the table headed "${header.join(' | ')}" has no rows`);
		for (const row of body) {
			assert.equal(row.length, header.length, `row "${row.join(' | ')}" does not match header "${header.join(' | ')}"`);
		}
	}
});

test('machine section names the CPU, cores and Node', () => {
	const text = section('Machine');
	assert.match(text, /`nproc` \d+/);
	assert.match(text, /CPU: \S+/);
	assert.match(text, new RegExp(`Node ${process.version.replaceAll('.', '\\.')}`));
	assert.match(text, /Load average/);
});

test('overhead covers every library in every scenario', () => {
	const {scenarios} = report.parts.overhead.result;
	assert.equal(scenarios.length, 2);
	for (const scenario of scenarios) {
		assert.deepEqual(scenario.libraries.map(library => library.name), ['section', 'vote', 'fetch', 'aisdk', 'langchain']);
		for (const library of scenario.libraries) {
			assert.ok(isPositive(library.wallOverIdeal.median), `${library.name}: wall / ideal is ${library.wallOverIdeal.median}`);
			assert.ok(isPositive(library.cpuMsPerCall.median), `${library.name}: CPU per call is ${library.cpuMsPerCall.median}`);
			assert.ok(library.maxInFlight >= 1, `${library.name}: no call in flight at the server`);
			assert.ok(library.maxInFlight <= scenario.concurrency, `${library.name}: ${library.maxInFlight} in flight at concurrency ${scenario.concurrency}`);
		}

		assert.deepEqual(scenario.targets.map(target => target.name), ['section', 'vote']);
		assert.equal(tables(section('1. Scheduling overhead')).length, 2);
	}

	assert.match(section('1. Scheduling overhead'), /within 5% of ideal: \*\*(met|not met)\*\*/);
});

test('size breakdown adds up to the package total', () => {
	const {parts, total, programs} = report.parts.size.result;
	for (const name of ['wasm', 'glue', 'wrapper']) {
		assert.ok(isPositive(parts[name].gzipBytes), `${name}: ${parts[name].gzipBytes} bytes`);
	}

	assert.equal(total, parts.wasm.gzipBytes + parts.glue.gzipBytes + parts.wrapper.gzipBytes);
	assert.deepEqual(programs.map(program => program.name), ['package', 'aisdk', 'langchain', 'fetch']);
	for (const program of programs) {
		assert.ok(isPositive(program.gzipBytes), `${program.name}: ${program.gzipBytes} bytes`);
	}

	assert.match(section('2. Size'), /Target: under 60 KB gzipped for the whole package: \*\*(met|not met)\*\*/);
});

test('start-up measures Node and workerd', () => {
	const {node, workerd} = report.parts.startup.result;
	assert.deepEqual(node.map(entry => entry.name), ['complete', 'fetch', 'aisdk', 'langchain']);
	for (const entry of node) {
		assert.ok(isPositive(entry.importToRequestMs.median), `${entry.name}: import → request ${entry.importToRequestMs.median} ms`);
		assert.ok(entry.spawnToRequestMs.median >= entry.importToRequestMs.median, `${entry.name}: spawn → request is shorter than import → request`);
	}

	assert.deepEqual(workerd.map(entry => entry.name), ['package', 'fetch']);
	for (const entry of workerd) {
		assert.ok(isPositive(entry.readyMs.median), `${entry.name}: ready ${entry.readyMs.median} ms`);
		assert.ok(isPositive(entry.dispatchToRequestMs.median), `${entry.name}: dispatch → request ${entry.dispatchToRequestMs.median} ms`);
	}
});

test('aggregate agrees with the plain JavaScript tally', () => {
	const result = report.parts.aggregate.result;
	assert.equal(result.sameWinner, true);
	assert.equal(result.sameCounts, true);
	assert.equal(result.winner, '42');
	assert.ok(isPositive(result.packagePerSecond.median));
	assert.ok(isPositive(result.javascriptPerSecond.median));
});

test('vote efficiency fills every cell next to its closed form', () => {
	const {cells, headline, settings} = report.parts.votes.result;
	assert.equal(cells.length, settings.ps.length * (settings.pluralityN.length + (2 * settings.ks.length)));
	for (const cell of cells) {
		assert.equal(cell.trials, settings.trials);
		assert.ok(cell.closedForm.error >= 0, `${cell.rule} ${cell.k} at p ${cell.p}: exact error ${cell.closedForm.error}`);
		assert.ok(cell.closedForm.error <= 1, `${cell.rule} ${cell.k} at p ${cell.p}: exact error ${cell.closedForm.error}`);
		// A plurality of N makes exactly N calls; adaptive rules make at least k.
		if (cell.rule === 'plurality') {
			assert.equal(cell.meanCalls, cell.k);
		} else {
			assert.ok(cell.meanCalls >= cell.k, `${cell.rule} ${cell.k} at p ${cell.p}: ${cell.meanCalls} calls`);
		}
	}

	// First to k is exactly as accurate as a plurality of 2k - 1.
	for (const cell of cells.filter(entry => entry.rule === 'firstTo')) {
		const plurality = cells.find(entry => entry.p === cell.p && entry.rule === 'plurality' && entry.k === (2 * cell.k) - 1);
		if (plurality) {
			assert.ok(Math.abs(cell.closedForm.error - plurality.closedForm.error) < 1e-12);
		}
	}

	assert.equal(headline.length, settings.ps.length * settings.pluralityN.length);
	assert.match(section('5. Vote efficiency'), /\*\*Headline:\*\*/);
});

test('real model runs at concurrency 1 and 4', () => {
	const result = report.parts.model.result;
	for (const kind of [result.vote, result.section]) {
		assert.deepEqual(kind.levels.map(level => level.concurrency), [1, 4]);
		for (const level of kind.levels) {
			assert.ok(level.answered.median > 0, `${kind.kind} at concurrency ${level.concurrency} got no answer`);
			assert.ok(level.maxInFlight <= level.concurrency);
		}
	}
});

test('memory reports five runs with peaks and collections', () => {
	const result = report.parts.memory.result;
	assert.equal(result.results.length, 5);
	for (const run of result.results) {
		assert.ok(run.peak.heapUsed >= run.after.heapUsed);
		assert.ok(isPositive(run.peak.wasm));
	}

	// The probe memory must show in the wasm proxy, or the column measures something else.
	const {memoryBytes, wasmProxyDelta, arrayBuffersDelta} = result.calibration;
	assert.ok(Math.abs(wasmProxyDelta - memoryBytes) < 64 * 1024, `a ${memoryBytes}-byte WebAssembly.Memory moved external - arrayBuffers by ${wasmProxyDelta} bytes`);
	assert.ok(arrayBuffersDelta < memoryBytes / 2, `a ${memoryBytes}-byte WebAssembly.Memory moved arrayBuffers by ${arrayBuffersDelta} bytes`);
	assert.match(section('7. Memory'), /\*\*(stopped growing|still growing)\*\*/);
});

test('cloudflare queue job loses and duplicates nothing', () => {
	const result = report.parts.cloudflare.result;
	for (const run of [...result.clean, result.faulted]) {
		assert.equal(run.results, result.subtasks);
		assert.equal(run.duplicateResults, 0);
		assert.equal(run.lostResults, 0);
		assert.equal(run.repeatedCalls, 0);
		assert.ok(run.maxInFlight <= 6, `${run.maxInFlight} requests in flight`);
		assert.ok(isPositive(run.perSecond));
	}

	assert.ok(result.faulted.redelivered > 0, 'the faulted run redelivered nothing');
	assert.match(section('8. Cloudflare Queues'), /no duplicate, no lost result\) in every run: \*\*yes\*\*/);
});
