// Runs a test worker in workerd through Miniflare. The worker imports the package by
// name, and esbuild bundles it with the Workers export conditions, so the package's
// workerd entry is used. Each imported .wasm file is copied next to the bundle, where
// Miniflare loads it as a compiled WebAssembly.Module, as workerd does in production.
// Everything the worker or the runtime prints is kept in `logs`.
import {copyFileSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import {Log, LogLevel, Miniflare} from 'miniflare';

// Miniflare 4.20260426 nests workerd 2026-04-26 and rejects newer compatibility dates.
const COMPATIBILITY_DATE = '2025-09-01';

// A request that awaits I/O owned by another, finished request never settles, and
// workerd 2026-04-26 prints nothing about it, so a dispatch that hangs fails instead.
const DISPATCH_TIMEOUT_MS = 30_000;

/**
Workerd messages that mean a request context rule was broken. NOTE: workerd does not
print them for every such fault (a cross-request await can hang silently), so tests
also check that every response arrives with the expected content.
*/
export const REQUEST_CONTEXT_ERRORS = [
	'Cannot perform I/O on behalf of a different request',
	'hanging Promise was canceled',
];

/** Log text that marks a failure in the worker: context errors, uncaught exceptions, panics. */
export const RUNTIME_ERRORS = [
	...REQUEST_CONTEXT_ERRORS,
	'Uncaught',
	'Wasm code generation disallowed',
	'panicked',
	'unreachable',
];

/** Keeps every log line from Miniflare itself. */
class CapturingLog extends Log {
	constructor(lines) {
		super(LogLevel.DEBUG);
		this.lines = lines;
	}

	log(message) {
		this.lines.push(message);
	}
}

/** Copies imported .wasm files beside the bundle and leaves their imports external. */
function wasmBesideBundle(outdir) {
	return {
		name: 'wasm-beside-bundle',
		setup(build) {
			build.onResolve({filter: /\.wasm$/}, args => {
				const source = path.resolve(args.resolveDir, args.path);
				const name = path.basename(source);
				copyFileSync(source, path.join(outdir, name));
				return {path: `./${name}`, external: true};
			});
		},
	};
}

/** Splits a stream into lines and appends each to `lines`. */
function collectLines(stream, lines) {
	let rest = '';
	stream.setEncoding('utf8');
	stream.on('data', text => {
		const parts = (rest + text).split('\n');
		rest = parts.pop();
		for (const line of parts) {
			if (line.trim() !== '') {
				lines.push(line);
			}
		}
	});
	stream.on('end', () => {
		if (rest.trim() !== '') {
			lines.push(rest);
		}
	});
}

/**
Bundles `entry` (a worker module) and serves it with Miniflare on 127.0.0.1.

`define` maps global names to JSON-serializable values that are inlined into the
bundle, such as the scripted server's URL, so the worker can build its provider at
module scope. `miniflare` adds Miniflare options, such as the bindings of queues,
Durable Objects and Workflows; `cloudflare:*` imports stay external for workerd to
resolve. Returns `{ url, dispatchFetch, logs, errorLines, waitForLog, dispose }`.
`dispatchFetch(path, init)` rejects with a TimeoutError after 30 s unless `init`
has its own signal. `logs` grows while the worker runs, console output included.
`errorLines()` lists the lines that contain any of RUNTIME_ERRORS, and
`waitForLog(text)` resolves once a line contains `text`.
*/
export async function startWorker(entry, {define = {}, miniflare: extraOptions = {}} = {}) {
	const outdir = mkdtempSync(path.join(tmpdir(), 'pte-workerd-'));
	const logs = [];
	let miniflare;
	try {
		await esbuild.build({
			entryPoints: [entry],
			outfile: path.join(outdir, 'worker.js'),
			bundle: true,
			format: 'esm',
			platform: 'neutral',
			target: 'es2022',
			conditions: ['workerd', 'worker', 'browser'],
			define: Object.fromEntries(Object.entries(define).map(([name, value]) => [name, JSON.stringify(value)])),
			external: ['cloudflare:*'],
			plugins: [wasmBesideBundle(outdir)],
			logLevel: 'silent',
		});

		miniflare = new Miniflare({
			modules: true,
			scriptPath: path.join(outdir, 'worker.js'),
			modulesRoot: outdir,
			modulesRules: [
				// The default rules read *.js as CommonJS.
				{type: 'ESModule', include: ['**/*.js']},
				{type: 'CompiledWasm', include: ['**/*.wasm']},
			],
			compatibilityDate: COMPATIBILITY_DATE,
			// Without this Miniflare downloads the request.cf object from the internet.
			cf: false,
			host: '127.0.0.1',
			port: 0,
			log: new CapturingLog(logs),
			handleRuntimeStdio(stdout, stderr) {
				collectLines(stdout, logs);
				collectLines(stderr, logs);
			},
			...extraOptions,
		});
		const url = await miniflare.ready;

		return {
			url: url.href.replace(/\/$/, ''),
			dispatchFetch: (input, init = {}) => miniflare.dispatchFetch(new URL(input, url).href, {
				signal: AbortSignal.timeout(DISPATCH_TIMEOUT_MS),
				...init,
			}),
			logs,
			errorLines: () => logs.filter(line => RUNTIME_ERRORS.some(text => line.includes(text))),
			async waitForLog(text, {timeoutMs = 5000} = {}) {
				const deadline = performance.now() + timeoutMs;
				while (!logs.some(line => line.includes(text))) {
					if (performance.now() > deadline) {
						throw new Error(`no log line contained ${JSON.stringify(text)} within ${timeoutMs} ms; logs:\n${logs.join('\n')}`);
					}

					// eslint-disable-next-line no-await-in-loop
					await new Promise(resolve => {
						setTimeout(resolve, 10);
					});
				}
			},
			async dispose() {
				try {
					await miniflare.dispose();
				} finally {
					rmSync(outdir, {recursive: true, force: true});
				}
			},
		};
	} catch (error) {
		try {
			await miniflare?.dispose();
		} catch {
			// The start error below is the one to report.
		}

		rmSync(outdir, {recursive: true, force: true});
		// Workerd explains a failed start only in its output.
		if (logs.length > 0) {
			error.message += `\nworkerd output:\n${logs.join('\n')}`;
		}

		throw error;
	}
}
