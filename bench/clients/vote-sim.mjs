// Vote efficiency: simulated voters of known accuracy run through the package's
// real scheduler as a `custom` provider. Each call returns "1" (right) with
// probability p and "2" (the one wrong answer) otherwise, after one turn of the
// event loop. The draw depends only on (cell, trial, sample index), so the
// results do not depend on how the scheduler interleaves the calls.
//
// Usage: node clients/vote-sim.mjs CONFIG_JSON
//   CONFIG_JSON: {"ps": [...], "pluralityN": [...], "ks": [...], "trials": n,
//                 "maxSamples": n, "parallelVotes": n, "seed": n}
import {performance} from 'node:perf_hooks';
import {custom, vote} from 'parallel-task-executor';
import {printResult} from '../lib/process.mjs';
import {uniform} from '../lib/random.mjs';

const config = JSON.parse(process.argv[2]);

const cells = [];
for (const p of config.ps) {
	for (const n of config.pluralityN) {
		cells.push({p, rule: 'plurality', k: n, options: {voters: n, concurrency: n}});
	}

	for (const k of config.ks) {
		cells.push({p, rule: 'firstTo', k, options: {voters: k, concurrency: k, rule: {firstTo: k}, maxSamples: config.maxSamples}});
		cells.push({p, rule: 'aheadBy', k, options: {voters: k, concurrency: k, rule: {aheadBy: k}, maxSamples: config.maxSamples}});
	}
}

// Calls made per trial of the cell being run, counted where the provider is called.
let callsByTrial = new Map();
const PROMPT = /^cell (\d+) trial (\d+)$/;
const simulated = custom(async request => {
	const [, cell, trial] = PROMPT.exec(request.messages[0].content).map(Number);
	if (!Number.isInteger(request.seed)) {
		throw new TypeError(`expected each sample's seed to be an integer (the provider's seed plus the sample index), got ${request.seed}`);
	}

	callsByTrial.set(trial, (callsByTrial.get(trial) ?? 0) + 1);
	await new Promise(resolve => {
		setImmediate(resolve);
	});
	const right = uniform(config.seed, cell, trial, request.seed) < cells[cell].p;
	return {text: right ? '1' : '2'};
}, {seed: 0, name: 'simulated'});

async function runCell(cellIndex) {
	const cell = cells[cellIndex];
	callsByTrial = new Map();
	let next = 0;
	let wrong = 0;
	let undecided = 0;
	let counted = 0;
	const worker = async () => {
		while (next < config.trials) {
			const trial = next++;
			const result = await vote({provider: simulated, prompt: `cell ${cellIndex} trial ${trial}`, extract: 'number', ...cell.options});
			if (result.winner !== '1') {
				wrong++;
			}

			if (!result.decided) {
				undecided++;
			}

			counted += result.valid;
		}
	};

	await Promise.all(Array.from({length: config.parallelVotes}, worker));
	const calls = [...callsByTrial.values()];
	const meanCalls = calls.reduce((sum, value) => sum + value, 0) / config.trials;
	const variance = calls.reduce((sum, value) => sum + (value - meanCalls) ** 2, 0) / Math.max(1, config.trials - 1);
	return {
		p: cell.p,
		rule: cell.rule,
		k: cell.k,
		trials: config.trials,
		wrong,
		undecided,
		meanCalls,
		meanCallsStdError: Math.sqrt(variance / config.trials),
		meanCounted: counted / config.trials,
	};
}

const start = performance.now();
const results = [];
for (let index = 0; index < cells.length; index++) {
	results.push(await runCell(index));
}

printResult({cells: results, seconds: (performance.now() - start) / 1000});
