// Part 7: memory. Repeated sectioning runs of many subtasks at high concurrency
// against the scripted server (its own process), in a client run with --expose-gc.
import path from 'node:path';
import {openaiOk} from '../../tests/support/scripted-server.mjs';
import {BENCH_DIR, runClient, startServerProcess} from '../lib/process.mjs';
import {fmt} from '../lib/stats.mjs';

const CLIENT = path.join(BENCH_DIR, 'clients', 'memory.mjs');
const MIB = 1_048_576;
// "Back near the start": the heap after the last run's collection within this of
// the heap after the first run's (the first run is the warm-up).
const HEAP_SLACK_BYTES = 2 * MIB;

export const title = '7. Memory';

export async function run(config, log) {
	const {subtasks, concurrency, runs, latencyMs} = config.memory;
	const server = await startServerProcess();
	try {
		await server.script({default: openaiOk('42', {delayMs: latencyMs})});
		log(`memory: ${runs} runs of ${subtasks} subtasks at concurrency ${concurrency}`);
		const result = await runClient(CLIENT, [`${server.url}/v1`, String(subtasks), String(concurrency), String(runs)], {nodeArgs: ['--expose-gc'], timeoutMs: 900_000});
		const first = result.results[0].after;
		const second = result.results[Math.min(1, result.results.length - 1)].after;
		const last = result.results.at(-1).after;
		return {
			...result,
			latencyMs,
			heapDeltaFromStart: last.heapUsed - result.start.heapUsed,
			heapWarmUp: first.heapUsed - result.start.heapUsed,
			heapDeltaAfterFirst: last.heapUsed - first.heapUsed,
			heapBackNearStart: last.heapUsed - first.heapUsed <= HEAP_SLACK_BYTES,
			wasmGrowthAfterSecond: last.wasm - second.wasm,
			rssGrowthAfterSecond: last.rss - second.rss,
			arrayBuffersGrowthAfterSecond: last.arrayBuffers - second.arrayBuffers,
		};
	} finally {
		await server.stop();
	}
}

const mib = bytes => fmt(bytes / MIB);

export function render(result) {
	const {calibration} = result;
	const lines = [
		`${result.runs} runs of \`section\` with ${result.subtasks.toLocaleString('en-US')} independent subtasks at concurrency ${result.concurrency}, against the scripted server in its own process (replies after ${result.latencyMs} ms), in one client process started with \`--expose-gc\`. The package does not expose its \`WebAssembly.Memory\`, so this measures \`process.memoryUsage()\`: \`heapUsed\` (JS heap), \`rss\`, \`arrayBuffers\`, and \`external − arrayBuffers\`, where Node 20 counts WebAssembly memory (checked in the same process: a touched ${mib(calibration.memoryBytes)} MiB \`WebAssembly.Memory\` raised it by ${mib(calibration.wasmProxyDelta)} MiB and \`arrayBuffers\` by ${mib(calibration.arrayBuffersDelta)} MiB). Peaks are sampled every 20 ms during a run; "after" is after two forced collections. MiB.`,
		'',
		'| | JS heap | wasm (external − arrayBuffers) | rss | arrayBuffers | wall (s) |',
		'|---|---|---|---|---|---|',
		`| start (after import, collected) | ${mib(result.start.heapUsed)} | ${mib(result.start.wasm)} | ${mib(result.start.rss)} | ${mib(result.start.arrayBuffers)} | |`,
	];
	for (const [index, run] of result.results.entries()) {
		lines.push(
			`| run ${index + 1} peak | ${mib(run.peak.heapUsed)} | ${mib(run.peak.wasm)} | ${mib(run.peak.rss)} | ${mib(run.peak.arrayBuffers)} | ${fmt(run.wallMs / 1000)} |`,
			`| run ${index + 1} after | ${mib(run.after.heapUsed)} | ${mib(run.after.wasm)} | ${mib(run.after.rss)} | ${mib(run.after.arrayBuffers)} | |`,
		);
	}

	lines.push(
		'',
		`- JS heap after collection: run 1 is the warm-up and kept ${mib(result.heapWarmUp)} MiB over the start; after run ${result.runs} the heap is ${mib(result.heapDeltaFromStart)} MiB over the start and ${mib(result.heapDeltaAfterFirst)} MiB over run 1. Back near its start after the warm-up (within ${mib(HEAP_SLACK_BYTES)} MiB of run 1): **${result.heapBackNearStart ? 'yes' : 'no'}**.`,
		`- Growth from after run 2 to after run ${result.runs}: wasm ${mib(result.wasmGrowthAfterSecond)} MiB (wasm memory never shrinks, so growth here is the leak sign; **${result.wasmGrowthAfterSecond <= 0 ? 'stopped growing' : 'still growing'}**), rss ${mib(result.rssGrowthAfterSecond)} MiB, arrayBuffers ${mib(result.arrayBuffersGrowthAfterSecond)} MiB.`,
		`- Providers and limiters alive in the core at the end: ${result.liveHandles.providers} and ${result.liveHandles.limiters} (one provider is held for all runs).`,
		'',
	);
	return lines.join('\n');
}
