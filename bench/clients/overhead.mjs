// One client process of the scheduling-overhead benchmark: loads one library,
// warms it up, then runs each scenario once against the scripted server and
// prints wall time and this process's CPU time (user + system, all threads).
//
// Usage: node clients/overhead.mjs LIBRARY BASE_URL SCENARIOS_JSON
//   SCENARIOS_JSON: [{"calls": 1000, "concurrency": 50}, ...]
import {performance} from 'node:perf_hooks';
import {installLoopbackGuard, guardViolations} from '../../tests/support/loopback-guard.mjs';
import {printResult} from '../lib/process.mjs';
import {LIBRARIES} from './libraries.mjs';

const [name, baseURL, scenariosJson] = process.argv.slice(2);
const library = LIBRARIES[name];
if (!library) {
	throw new Error(`unknown library ${name}; expected one of ${Object.keys(LIBRARIES).join(', ')}`);
}

const scenarios = JSON.parse(scenariosJson);
const origin = new URL(baseURL).origin;
installLoopbackGuard();

async function control(method, pathname) {
	const response = await fetch(`${origin}${pathname}`, {method, body: method === 'POST' ? '{}' : undefined});
	return response.json();
}

const run = await library.makeRunner(baseURL);

/** Runs one batch and checks that every call returned the scripted reply. */
async function batch(calls, concurrency, tag) {
	const prompts = Array.from({length: calls}, (_, index) => `${tag} ${index}: what is 6 times 7?`);
	await control('POST', '/__reset');
	const cpuBefore = process.cpuUsage();
	const start = performance.now();
	const texts = await run(prompts, concurrency);
	const wallMs = performance.now() - start;
	const cpu = process.cpuUsage(cpuBefore);
	const stats = await control('GET', '/__stats');
	const ok = texts.filter(text => text === '42').length;
	if (ok !== calls) {
		throw new Error(`${name}: ${calls - ok} of ${calls} calls did not return the scripted reply`);
	}

	return {
		calls,
		concurrency,
		wallMs,
		cpuMs: (cpu.user + cpu.system) / 1000,
		serverRequests: stats.count,
		maxInFlight: stats.maxInFlight,
	};
}

// The warm-up compiles the hot paths and opens connections before anything is timed.
const warm = scenarios[0];
await batch(Math.min(warm.calls, warm.concurrency * 2), warm.concurrency, 'warm-up');

const results = [];
for (const [index, scenario] of scenarios.entries()) {
	results.push(await batch(scenario.calls, scenario.concurrency, `s${index}`));
}

if (guardViolations().length > 0) {
	throw new Error(`${name} tried to reach non-loopback hosts: ${JSON.stringify(guardViolations())}`);
}

printResult({library: name, results});
