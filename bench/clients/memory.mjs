// Memory over repeated runs: sectioning runs of many subtasks against the
// scripted server, with the peak memory sampled during each run and the memory
// after a forced collection between runs. Needs `node --expose-gc`.
//
// Usage: node --expose-gc clients/memory.mjs BASE_URL SUBTASKS CONCURRENCY RUNS
import {performance} from 'node:perf_hooks';
import {liveHandles, openai, section} from 'parallel-task-executor';
import {installLoopbackGuard} from '../../tests/support/loopback-guard.mjs';
import {printResult} from '../lib/process.mjs';

const [baseURL, subtasks, concurrency, runs] = [process.argv[2], ...process.argv.slice(3).map(Number)];
const origin = new URL(baseURL).origin;
const SAMPLE_INTERVAL_MS = 20;
installLoopbackGuard();

if (typeof globalThis.gc !== 'function') {
	throw new TypeError('globalThis.gc is missing; run this client with node --expose-gc');
}

/** Reads the JS heap, rss, arrayBuffers, and `external − arrayBuffers`, where Node 20 counts WebAssembly memory. */
function snapshot() {
	const usage = process.memoryUsage();
	return {heapUsed: usage.heapUsed, rss: usage.rss, arrayBuffers: usage.arrayBuffers, wasm: usage.external - usage.arrayBuffers};
}

function collect() {
	globalThis.gc();
	globalThis.gc();
	return snapshot();
}

// Check the proxy on this Node: a 2 MiB WebAssembly.Memory, touched, must show
// in external − arrayBuffers and not in arrayBuffers.
const beforeCalibration = collect();
const probe = new WebAssembly.Memory({initial: 32});
new Uint8Array(probe.buffer).fill(1);
const withProbe = snapshot();
const calibration = {
	memoryBytes: probe.buffer.byteLength,
	wasmProxyDelta: withProbe.wasm - beforeCalibration.wasm,
	arrayBuffersDelta: withProbe.arrayBuffers - beforeCalibration.arrayBuffers,
};

const provider = openai({baseURL, model: 'scripted'});
const plan = Array.from({length: subtasks}, (_, index) => ({id: `t${index}`, prompt: `Task ${index}: what is 6 times 7?`}));
const start = collect();
const results = [];
for (let run = 0; run < runs; run++) {
	await fetch(`${origin}/__reset`, {method: 'POST', body: '{}'});
	const peak = snapshot();
	const sampler = setInterval(() => {
		const now = snapshot();
		for (const key of Object.keys(peak)) {
			peak[key] = Math.max(peak[key], now[key]);
		}
	}, SAMPLE_INTERVAL_MS);
	const began = performance.now();
	let report = await section({provider, subtasks: plan, concurrency});
	const wallMs = performance.now() - began;
	clearInterval(sampler);
	const end = snapshot();
	for (const key of Object.keys(peak)) {
		peak[key] = Math.max(peak[key], end[key]);
	}

	const ok = report.results.filter(result => result.status === 'ok').length;
	if (ok !== subtasks) {
		throw new Error(`run ${run + 1}: ${subtasks - ok} of ${subtasks} subtasks failed`);
	}

	report = null;
	results.push({wallMs, peak, after: collect()});
}

printResult({subtasks, concurrency, runs, calibration, start, results, liveHandles: liveHandles()});
