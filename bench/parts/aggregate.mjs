// Part 4: aggregation throughput. `aggregate` with number extraction against a
// plain JavaScript tally over the same answers, in one client process.
import path from 'node:path';
import {BENCH_DIR, runClient} from '../lib/process.mjs';
import {fmt, fmtSpread, summarize} from '../lib/stats.mjs';

const CLIENT = path.join(BENCH_DIR, 'clients', 'aggregate.mjs');

export const title = '4. Aggregation throughput';

export async function run(config, log) {
	const {answers, rounds} = config.aggregate;
	log(`aggregate: ${answers} answers, ${rounds} rounds`);
	const result = await runClient(CLIENT, [String(answers), String(rounds)], {timeoutMs: 900_000});
	const perSecond = ms => answers / (ms / 1000);
	// The first call of the package also grows its wasm memory, so it is shown apart.
	const steady = result.times.package.slice(1);
	return {
		answers,
		rounds,
		packageFirstCall: perSecond(result.times.package[0]),
		packagePerSecond: steady.length > 0 ? summarize(steady.map(perSecond)) : null,
		javascriptPerSecond: summarize(result.times.javascript.map(perSecond)),
		sameWinner: result.sameWinner,
		sameCounts: result.sameCounts,
		winner: result.packageWinner,
		counts: result.packageCounts,
		abstained: result.packageAbstained,
		wasmBytesBefore: result.wasmBytesBefore,
		wasmBytesAfter: result.wasmBytesAfter,
		scaling: result.scaling,
	};
}

export function render(result) {
	const lines = [
		`${result.answers.toLocaleString('en-US')} short generated replies ("The answer is 42.", "6 * 7 = 1,234.50", "I am not sure.", …), where the answer is always the last number. The JavaScript version takes the last match of \`/-?\\d[\\d,]*(?:\\.\\d+)?/g\`, drops the commas, canonicalizes with \`String(Number(...))\` and tallies in a \`Map\`. Both ran in one process, taking turns, ${result.rounds} rounds after a warm-up on 1,000 replies. Answers per second, median (min–max).`,
		'',
		'| implementation | answers per second |',
		'|---|---|',
		`| \`aggregate(answers, {extract: 'number'})\`, first call at this size | ${fmt(result.packageFirstCall)} |`,
		`| \`aggregate(answers, {extract: 'number'})\`, later calls | ${fmtSpread(result.packagePerSecond)} |`,
		`| plain JavaScript (regex + Map) | ${fmtSpread(result.javascriptPerSecond)} |`,
		'',
		`Same winner: **${result.sameWinner ? 'yes' : 'no'}** (${result.winner}); same counts for every answer: **${result.sameCounts ? 'yes' : 'no'}** (${Object.entries(result.counts).map(([answer, votes]) => `${answer}: ${votes}`).join(', ')}; ${result.abstained} replies without a number abstained).`,
		'',
	];
	if (result.packagePerSecond) {
		lines.splice(lines.length - 1, 0, '', `The plain JavaScript tally is ${fmt(result.javascriptPerSecond.median / result.packagePerSecond.median)}× the package's steady rate. \`aggregate\` does more per answer (the number finder also reads answer markers and spelled-out numbers, and the result lists every sample with its status), and its memory use is large: the process's \`external − arrayBuffers\` (where Node 20 counts WebAssembly memory) grew from ${fmt(result.wasmBytesBefore / 1_048_576)} MiB to ${fmt(result.wasmBytesAfter / 1_048_576)} MiB over these calls, about ${fmt((result.wasmBytesAfter - result.wasmBytesBefore) / result.answers)} bytes per answer.`);
	}

	if (result.scaling) {
		const {distinct, adaptive} = result.scaling;
		const microseconds = ms => fmt(ms * 1000);
		lines.push(
			'',
			'Cost per answer as the input grows fourfold (median of 3 runs each; a ratio near 1 means linear time):',
			'',
			'| workload | smaller | µs per answer | 4× larger | µs per answer | ratio |',
			'|---|---|---|---|---|---|',
			`| \`aggregate\` over answers that all differ | ${distinct.small.toLocaleString('en-US')} | ${microseconds(distinct.smallMsPerItem)} | ${distinct.large.toLocaleString('en-US')} | ${microseconds(distinct.largeMsPerItem)} | ${fmt(distinct.largeMsPerItem / distinct.smallMsPerItem)} |`,
			`| \`vote\` with \`aheadBy: 2\` run to \`maxSamples\` (custom provider, alternating answers) | ${adaptive.small.toLocaleString('en-US')} | ${microseconds(adaptive.smallMsPerItem)} | ${adaptive.large.toLocaleString('en-US')} | ${microseconds(adaptive.largeMsPerItem)} | ${fmt(adaptive.largeMsPerItem / adaptive.smallMsPerItem)} |`,
			'',
		);
	}

	return lines.join('\n');
}
