// One start-up measurement in a fresh process. It records the time (epoch ms,
// high resolution) just before the library is imported, then makes one call whose
// prompt carries that time, so the server can compute the time from the import
// to the request's arrival.
//
// Usage: node clients/startup.mjs LIBRARY BASE_URL
import {performance} from 'node:perf_hooks';
import {installLoopbackGuard, guardViolations} from '../../tests/support/loopback-guard.mjs';

const importStart = performance.timeOrigin + performance.now();
const [name, baseURL] = process.argv.slice(2);
installLoopbackGuard();

const {LIBRARIES} = await import('./libraries.mjs');
const run = await LIBRARIES[name].makeRunner(baseURL);
const [text] = await run([`startup importStart=${importStart}`], 1);
if (text !== '42') {
	throw new Error(`${name} returned ${JSON.stringify(text)} instead of the scripted reply`);
}

if (guardViolations().length > 0) {
	throw new Error(`${name} tried to reach non-loopback hosts: ${JSON.stringify(guardViolations())}`);
}

const {printResult} = await import('../lib/process.mjs');
printResult({library: name, importStart, processUptimeAtImportMs: importStart - performance.timeOrigin});
