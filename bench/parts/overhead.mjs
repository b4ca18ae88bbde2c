// Part 1: scheduling overhead. Each library sends the same batches to the
// scripted server, which runs in its own process and replies after a fixed
// latency. Each measurement is a fresh client process, and the libraries take
// turns within every round so that they share the machine's drift.
import path from 'node:path';
import {openaiOk} from '../../tests/support/scripted-server.mjs';
import {BENCH_DIR, runClient, startServerProcess} from '../lib/process.mjs';
import {fmt, fmtSpread, pairedRatio, summarize} from '../lib/stats.mjs';
import {LIBRARIES} from '../clients/libraries.mjs';

const CLIENT = path.join(BENCH_DIR, 'clients', 'overhead.mjs');
const NAMES = ['section', 'vote', 'fetch', 'aisdk', 'langchain'];
const BASELINE = 'fetch';
const OURS = ['section', 'vote'];
// Targets: wall time within 5% of the ideal, and no slower than fetch with p-limit.
const WALL_TARGET = 1.05;

export const title = '1. Scheduling overhead';

export async function run(config, log) {
	const {rounds, scenarios, latencyMs} = config.overhead;
	const server = await startServerProcess();
	const raw = Object.fromEntries(NAMES.map(name => [name, []]));
	try {
		await server.script({default: openaiOk('42', {delayMs: latencyMs})});
		for (let round = 0; round < rounds; round++) {
			// Rotate the order so no library always runs first or last.
			const order = NAMES.map((_, index) => NAMES[(index + round) % NAMES.length]);
			for (const name of order) {
				log(`overhead: round ${round + 1}/${rounds}, ${name}`);
				const result = await runClient(CLIENT, [name, `${server.url}/v1`, JSON.stringify(scenarios)]);
				raw[name].push(result.results);
			}
		}
	} finally {
		await server.stop();
	}

	return {latencyMs, rounds, scenarios: scenarios.map((scenario, index) => summarizeScenario(scenario, index, raw, latencyMs))};
}

function summarizeScenario(scenario, index, raw, latencyMs) {
	const idealMs = Math.ceil(scenario.calls / scenario.concurrency) * latencyMs;
	const wall = name => raw[name].map(results => results[index].wallMs);
	const cpuPerCall = name => raw[name].map(results => results[index].cpuMs / scenario.calls);
	const libraries = NAMES.map(name => ({
		name,
		label: LIBRARIES[name].label,
		wallOverIdeal: summarize(wall(name).map(ms => ms / idealMs)),
		cpuMsPerCall: summarize(cpuPerCall(name)),
		wallVsFetch: pairedRatio(wall(name), wall(BASELINE)),
		cpuVsFetch: pairedRatio(cpuPerCall(name), cpuPerCall(BASELINE)),
		maxInFlight: Math.max(...raw[name].map(results => results[index].maxInFlight)),
	}));
	const targets = OURS.map(name => {
		const entry = libraries.find(library => library.name === name);
		return {
			name,
			withinFivePercent: entry.wallOverIdeal.median <= WALL_TARGET,
			noSlowerThanFetch: entry.wallVsFetch.median <= 1,
		};
	});
	return {...scenario, idealMs, libraries, targets};
}

export function render(result) {
	const lines = [
		`Each client process warms up, then runs the batches below against the scripted server in its own process, which replies to every call after ${result.latencyMs} ms. Figures are medians of ${result.rounds} round${result.rounds === 1 ? '' : 's'} with the minimum and maximum in brackets; in each round every library ran once, in rotated order. "vs fetch" is the ratio to fetch + p-limit of the same round, then the median of those ratios. CPU is \`process.cpuUsage()\` (user + system, every thread of the client process) over the batch, divided by the calls. The scripted server shares the machine's cores with the client. \`section\` runs one subtask per call; \`vote\` runs one voter per call with \`rule: {atLeast: N}\`, so that all N samples run (plurality would settle at a majority and cancel the rest).`,
		'',
	];
	for (const scenario of result.scenarios) {
		lines.push(
			`**${scenario.calls} calls at concurrency ${scenario.concurrency}** (ideal wall ${fmt(scenario.idealMs / 1000)} s)`,
			'',
			'| library | wall / ideal | wall vs fetch | CPU ms per call | CPU vs fetch | max in flight at the server |',
			'|---|---|---|---|---|---|',
		);
		for (const library of scenario.libraries) {
			lines.push(`| ${library.label} | ${fmtSpread(library.wallOverIdeal)} | ${fmtSpread(library.wallVsFetch)} | ${fmtSpread(library.cpuMsPerCall)} | ${fmtSpread(library.cpuVsFetch)} | ${library.maxInFlight} |`);
		}

		lines.push('', 'Targets (medians): wall within 5% of ideal; wall no slower than fetch + p-limit.', '');
		const baseline = scenario.libraries.find(library => library.name === BASELINE);
		const baselineCpuSeconds = (baseline.cpuMsPerCall.median * scenario.calls) / 1000;
		if (baseline.wallOverIdeal.median > WALL_TARGET && baselineCpuSeconds >= scenario.idealMs / 1000) {
			lines.push(`fetch + p-limit itself took ${fmt(baseline.wallOverIdeal.median)}× the ideal, and its client process alone used ${fmt(baselineCpuSeconds)} s of CPU for the ${scenario.calls} calls against an ideal wall of ${fmt(scenario.idealMs / 1000)} s. At this load the wall time is bound by CPU on this machine rather than by any library's scheduling, so the "vs fetch" and CPU columns are the comparison that holds.`, '');
		} else if (baseline.wallOverIdeal.median > WALL_TARGET) {
			lines.push(`fetch + p-limit itself took ${fmt(baseline.wallOverIdeal.median)}× the ideal, so part of the gap to the ideal is the machine's, not the scheduler's.`, '');
		}

		for (const target of scenario.targets) {
			const label = LIBRARIES[target.name].label;
			lines.push(`- ${label}: within 5% of ideal: **${target.withinFivePercent ? 'met' : 'not met'}**; no slower than fetch + p-limit: **${target.noSlowerThanFetch ? 'met' : 'not met'}**.`);
		}

		lines.push('');
	}

	return lines.join('\n');
}
