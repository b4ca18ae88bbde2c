// Child processes for the benchmark: the scripted provider server in a process of
// its own (so the client's CPU time is measured alone), and one-shot client
// scripts that print a single JSON result line.
import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
const SCRIPTED_SERVER = path.join(REPO_ROOT, 'tests', 'support', 'scripted-server.mjs');
const READY_TIMEOUT_MS = 30_000;

// Peers read these; none of them may trace, report or download anything.
export const QUIET_ENV = {
	LANGCHAIN_TRACING_V2: 'false',
	LANGSMITH_TRACING: 'false',
	LANGCHAIN_CALLBACKS_BACKGROUND: 'false',
	OPENAI_API_KEY: 'sk-bench-not-a-real-key',
};

/** Resolves with the first "READY <url>" line a child prints on stdout. */
function waitForReady(child, label) {
	return new Promise((resolve, reject) => {
		let stdout = '';
		let stderr = '';
		const timer = setTimeout(() => {
			child.kill('SIGKILL');
			reject(new Error(`${label} printed no READY line within ${READY_TIMEOUT_MS} ms; stderr: ${stderr.slice(-2000)}`));
		}, READY_TIMEOUT_MS);
		child.stderr.on('data', chunk => {
			stderr = (stderr + chunk).slice(-8000);
		});
		child.stdout.on('data', chunk => {
			stdout += chunk;
			const match = /^READY (\S+)$/m.exec(stdout);
			if (match) {
				clearTimeout(timer);
				resolve(match[1]);
			}
		});
		child.once('exit', (code, signal) => {
			clearTimeout(timer);
			reject(new Error(`${label} exited (${signal ?? `status ${code}`}) before it was ready; stderr: ${stderr.slice(-2000)}`));
		});
	});
}

/**
Starts the scripted provider server in its own Node process on 127.0.0.1.
Returns `{url, script(payload), reset(), stats(), stop()}`; `script` posts the
control API's `{default, rules}` payload.
*/
export async function startServerProcess() {
	const child = spawn(process.execPath, [SCRIPTED_SERVER], {stdio: ['ignore', 'pipe', 'pipe']});
	const url = await waitForReady(child, 'the scripted server');

	const control = async (method, pathname, body) => {
		const response = await fetch(`${url}${pathname}`, {
			method,
			headers: {'content-type': 'application/json'},
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const json = await response.json();
		if (!response.ok) {
			throw new Error(`scripted server ${method} ${pathname} failed with HTTP ${response.status}: ${JSON.stringify(json)}`);
		}

		return json;
	};

	return {
		url,
		pid: child.pid,
		script: payload => control('POST', '/__script', payload),
		reset: () => control('POST', '/__reset', {}),
		stats: () => control('GET', '/__stats'),
		async stop() {
			if (child.exitCode !== null || child.signalCode !== null) {
				return;
			}

			const exited = new Promise(resolve => {
				child.once('exit', resolve);
			});
			child.kill('SIGTERM');
			const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
			await exited;
			clearTimeout(timer);
		},
	};
}

/**
Runs `node [nodeArgs] script [args]` and resolves with the JSON object the
script prints on its last stdout line starting with "RESULT ". Rejects with the
script's stderr when it exits with a non-zero status or prints no result.
*/
export function runClient(script, args = [], {nodeArgs = [], env = {}, timeoutMs = 300_000} = {}) {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
			cwd: BENCH_DIR,
			env: {...process.env, ...QUIET_ENV, ...env},
			stdio: ['ignore', 'pipe', 'pipe'],
		});
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', chunk => {
			stdout += chunk;
		});
		child.stderr.on('data', chunk => {
			stderr = (stderr + chunk).slice(-8000);
		});
		const timer = setTimeout(() => {
			child.kill('SIGKILL');
		}, timeoutMs);
		child.once('error', error => {
			clearTimeout(timer);
			reject(error);
		});
		child.once('exit', (code, signal) => {
			clearTimeout(timer);
			const line = stdout.split('\n').findLast(text => text.startsWith('RESULT '));
			const name = path.relative(BENCH_DIR, script);
			if (code !== 0 || !line) {
				const status = signal ? `signal ${signal}` : `status ${code}`;
				reject(new Error(`${name} ${args.join(' ')} ended with ${status}${line ? '' : ' and no result'}:\n${stderr.trim()}`));
				return;
			}

			resolve(JSON.parse(line.slice('RESULT '.length)));
		});
	});
}

/** Prints a client's result in the form runClient reads. */
export function printResult(result) {
	process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}
