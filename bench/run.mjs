// Runs the benchmark suite and writes its report. scripts/bench.sh is the one
// command: it installs and builds first, then runs this file.
//
// Usage: node bench/run.mjs [--quick] [--out FILE] [--json FILE] [--only PART,...]
//        node bench/run.mjs --render JSON [--out FILE]
//   --quick   every part at a tiny size (seconds): checks that the suite works, measures nothing
//   --out     the Markdown report (default BENCHMARKS.md at the repository root, or a
//             temporary folder with --quick)
//   --json    also write every figure as JSON
//   --only    run only these parts: overhead, size, startup, aggregate, votes, model, memory, cloudflare
//   --render  write the report again from the JSON of an earlier run, measuring nothing
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import {BENCH_DIR, REPO_ROOT} from './lib/process.mjs';
import * as aggregate from './parts/aggregate.mjs';
import * as cloudflare from './parts/cloudflare.mjs';
import * as memory from './parts/memory.mjs';
import * as overhead from './parts/overhead.mjs';
import * as realModel from './parts/real-model.mjs';
import * as size from './parts/size.mjs';
import * as startup from './parts/startup.mjs';
import * as voteEfficiency from './parts/vote-efficiency.mjs';

const PARTS = {overhead, size, startup, aggregate, votes: voteEfficiency, model: realModel, memory, cloudflare};

const FULL = {
	quick: false,
	overhead: {rounds: 5, latencyMs: 50, scenarios: [{calls: 1000, concurrency: 50}, {calls: 200, concurrency: 200}]},
	startup: {nodeRuns: 7, workerdRuns: 5},
	aggregate: {answers: 100_000, rounds: 5},
	voteEfficiency: {ps: [0.6, 0.7, 0.8, 0.9, 0.99], pluralityN: [3, 5, 7, 9, 11, 13], ks: [2, 3, 4, 5], trials: 1000, maxSamples: 200, parallelVotes: 32, seed: 20_240_601},
	realModel: {samples: 20, subtasks: 20, rounds: 3, maxTokens: 24},
	memory: {subtasks: 10_000, concurrency: 100, runs: 5, latencyMs: 5},
	cloudflare: {subtasks: 2000, runs: 3, latencyMs: 5},
};

const QUICK = {
	quick: true,
	overhead: {rounds: 1, latencyMs: 50, scenarios: [{calls: 40, concurrency: 10}, {calls: 20, concurrency: 20}]},
	startup: {nodeRuns: 1, workerdRuns: 1},
	aggregate: {answers: 2000, rounds: 2},
	voteEfficiency: {...FULL.voteEfficiency, trials: 10},
	realModel: {samples: 4, subtasks: 4, rounds: 1, maxTokens: 8},
	memory: {subtasks: 200, concurrency: 20, runs: 5, latencyMs: 5},
	cloudflare: {subtasks: 100, runs: 1, latencyMs: 5},
};

function parseArguments(argv) {
	const options = {quick: false, out: null, json: null, only: null, render: null};
	for (let index = 0; index < argv.length; index++) {
		const argument = argv[index];
		const value = () => {
			const next = argv[++index];
			if (next === undefined) {
				throw new Error(`${argument} is missing its value; see the usage at the top of bench/run.mjs`);
			}

			return next;
		};

		if (argument === '--quick') {
			options.quick = true;
		} else if (argument === '--out') {
			options.out = path.resolve(value());
		} else if (argument === '--render') {
			options.render = path.resolve(value());
		} else if (argument === '--json') {
			options.json = path.resolve(value());
		} else if (argument === '--only') {
			options.only = value().split(',');
			const unknown = options.only.filter(name => !PARTS[name]);
			if (unknown.length > 0) {
				throw new Error(`--only: unknown part ${unknown.join(', ')}; choose from ${Object.keys(PARTS).join(', ')}`);
			}
		} else {
			throw new Error(`unknown argument ${argument}; usage: node bench/run.mjs [--quick] [--out FILE] [--json FILE] [--only PART,...]`);
		}
	}

	options.out ??= options.quick ? path.join(os.tmpdir(), 'pte-bench-quick', 'BENCHMARKS.md') : path.join(REPO_ROOT, 'BENCHMARKS.md');
	return options;
}

const PEERS = ['ai', '@ai-sdk/openai-compatible', '@langchain/openai', '@langchain/core', 'p-limit'];

/** Returns the installed version of each peer library. */
function peerVersions() {
	return Object.fromEntries(PEERS.map(name => {
		const manifest = JSON.parse(readFileSync(path.join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8'));
		return [name, manifest.version];
	}));
}

function machine() {
	const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
	const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
	return {
		nproc: os.availableParallelism(),
		cpuModel: model.trim(),
		memoryGiB: os.totalmem() / 2 ** 30,
		node: process.version,
		platform: `${os.type()} ${os.release()} ${os.arch()}`,
		date: new Date().toISOString(),
		peers: peerVersions(),
	};
}

function log(line) {
	process.stderr.write(`[bench] ${line}\n`);
}

function render(report, options) {
	const {machine: info} = report;
	const command = ['scripts/bench.sh', ...(options.quick ? ['--quick'] : []), ...(options.only ? ['--only', options.only.join(',')] : [])].join(' ');
	const loads = `${report.loadBefore.map(value => value.toFixed(2)).join(', ')} before the suite started, ${report.loadAfter.map(value => value.toFixed(2)).join(', ')} when it ended (that includes the suite's own work)`;
	// The load after the run includes the suite's own work, so only the load before it measures other work.
	const busy = report.loadBefore[0] > info.nproc * 0.5;
	const lines = [
		'# Benchmarks',
		'',
		`Written by \`${command}\`${options.quick ? ' (tiny sizes: these figures only show that the suite runs, they measure nothing)' : ''}. Timed figures are medians of several runs with their spread, and comparisons are ratios measured side by side in the same run on this machine: they promise nothing for any other machine.`,
		'',
		'## Machine',
		'',
		`- CPU: ${info.cpuModel}, \`nproc\` ${info.nproc}; memory ${info.memoryGiB.toFixed(1)} GiB`,
		`- Node ${info.node} on ${info.platform}`,
		`- Date: ${info.date}; the suite took ${report.seconds < 90 ? `${Math.round(report.seconds)} s` : `${(report.seconds / 60).toFixed(1)} min`}`,
		`- Peers (from \`bench/package-lock.json\`): ${Object.entries(info.peers).map(([name, version]) => `${name} ${version}`).join(', ')}. The newest \`ai\` (7.x), \`@ai-sdk/openai-compatible\` (3.x) and \`@langchain/openai\` (1.6 and later) declare Node 22 or later in \`engines\`, so the newest releases that declare Node 20 are pinned.`,
		`- Load average (1, 5, 15 min): ${loads}${busy ? '. **The machine was already busy with other work when the suite started, so absolute times are inflated and noisy. The side-by-side ratios are the figures to read.**' : ''}`,
		`- Reproduce: \`${command}\``,
		'',
	];
	for (const [name, part] of Object.entries(PARTS)) {
		const entry = report.parts[name];
		if (!entry) {
			continue;
		}

		lines.push(`## ${part.title}`, '');
		if (entry.error) {
			lines.push(`**FAILED:** ${entry.error}`, '');
		} else {
			lines.push(part.render(entry.result));
		}
	}

	return `${lines.join('\n').trimEnd()}\n`;
}

async function main() {
	const options = parseArguments(process.argv.slice(2));
	if (options.render) {
		const saved = JSON.parse(readFileSync(options.render, 'utf8'));
		const only = Object.keys(PARTS).filter(name => saved.parts[name]);
		writeFileSync(options.out, render(saved, {quick: saved.mode === 'quick', only: only.length < Object.keys(PARTS).length ? only : null}));
		log(`wrote ${options.out} from ${options.render}`);
		return;
	}

	const config = options.quick ? QUICK : FULL;
	const started = performance.now();
	const report = {mode: options.quick ? 'quick' : 'full', config, machine: machine(), loadBefore: os.loadavg(), parts: {}};
	let failures = 0;
	for (const [name, part] of Object.entries(PARTS)) {
		if (options.only && !options.only.includes(name)) {
			continue;
		}

		log(`${part.title}`);
		const partStart = performance.now();
		try {
			const result = await part.run(config, log);
			report.parts[name] = {result, seconds: (performance.now() - partStart) / 1000};
		} catch (error) {
			failures++;
			log(`${part.title} failed: ${error.stack ?? error}`);
			report.parts[name] = {error: String(error.message ?? error).split('\n')[0], seconds: (performance.now() - partStart) / 1000};
		}

		log(`${part.title}: ${report.parts[name].seconds.toFixed(1)} s`);
	}

	report.loadAfter = os.loadavg();
	report.seconds = (performance.now() - started) / 1000;
	mkdirSync(path.dirname(options.out), {recursive: true});
	writeFileSync(options.out, render(report, options));
	log(`wrote ${options.out}`);
	if (options.json) {
		mkdirSync(path.dirname(options.json), {recursive: true});
		writeFileSync(options.json, `${JSON.stringify(report, null, '\t')}\n`);
		log(`wrote ${options.json}`);
	}

	if (failures > 0) {
		log(`${failures} part(s) failed`);
		process.exitCode = 1;
	}
}

await main();
