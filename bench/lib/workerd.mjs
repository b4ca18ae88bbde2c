// Bundles a worker once (the Workers export conditions, so the package's workerd
// entry is used, with each imported .wasm copied beside the bundle) and starts
// fresh Miniflare instances of it on demand.
import {copyFileSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import {Log, LogLevel, Miniflare} from 'miniflare';

// Miniflare 4.20260426 runs workerd 2026-04-26, which rejects newer compatibility dates.
const COMPATIBILITY_DATE = '2025-09-01';

/** Keeps Miniflare's own log lines instead of printing them. */
class KeepingLog extends Log {
	constructor(lines) {
		super(LogLevel.WARN);
		this.lines = lines;
	}

	log(message) {
		this.lines.push(message);
	}
}

/**
Bundles `entry` into a temporary folder. Returns `{start(), dispose()}`, where
`start()` resolves with `{readyMs, dispatchFetch, logs, dispose}` for a new
Miniflare instance, and `readyMs` is the time from its construction to ready.
*/
export async function bundleWorker(entry, {define = {}} = {}) {
	const outdir = mkdtempSync(path.join(tmpdir(), 'pte-bench-workerd-'));
	const copyWasm = {
		name: 'copy-wasm',
		setup(build) {
			build.onResolve({filter: /\.wasm$/}, args => {
				const source = path.resolve(args.resolveDir, args.path);
				copyFileSync(source, path.join(outdir, path.basename(source)));
				return {path: `./${path.basename(source)}`, external: true};
			});
		},
	};
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
			plugins: [copyWasm],
			logLevel: 'silent',
		});
	} catch (error) {
		rmSync(outdir, {recursive: true, force: true});
		throw error;
	}

	return {
		async start() {
			const logs = [];
			const startedAt = performance.now();
			const miniflare = new Miniflare({
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
				log: new KeepingLog(logs),
				handleRuntimeStdio(stdout, stderr) {
					stdout.on('data', chunk => logs.push(String(chunk)));
					stderr.on('data', chunk => logs.push(String(chunk)));
				},
			});
			try {
				await miniflare.ready;
			} catch (error) {
				await miniflare.dispose().catch(() => {});
				error.message += logs.length > 0 ? `\nworkerd output:\n${logs.join('\n')}` : '';
				throw error;
			}

			return {
				readyMs: performance.now() - startedAt,
				logs,
				dispatchFetch: (url, init) => miniflare.dispatchFetch(url, init),
				dispose: () => miniflare.dispose(),
			};
		},
		dispose() {
			rmSync(outdir, {recursive: true, force: true});
		},
	};
}
