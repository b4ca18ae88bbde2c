// Test set-up shared by the section and scheduler suites: one scripted server per
// test file, an OpenAI provider pointed at it, the loopback guard, and a reset
// before each test. `server` and `provider` are live bindings, set once the file's
// `before` hook has run.
import {after, before, beforeEach} from 'node:test';
import {openai} from 'parallel-task-executor';
import {installLoopbackGuard} from './loopback-guard.mjs';
import {startScriptedServer} from './scripted-server.mjs';

export let server;
export let provider;

/**
Registers the hooks of the calling test file. Before each test it waits until no
request is in flight (requests that an earlier test aborted may still be arriving),
lets `settleMs` pass, and resets the server's rules, records and default reply.
*/
export function useScriptedProvider({settleMs = 50} = {}) {
	let uninstallGuard;
	before(async () => {
		uninstallGuard = installLoopbackGuard();
		server = await startScriptedServer();
		provider = openai({baseURL: `${server.url}/v1`, model: 'scripted'});
	});
	after(async () => {
		await server.close();
		uninstallGuard();
	});
	beforeEach(async () => {
		await server.waitFor(() => server.stats().inFlight === 0);
		if (settleMs > 0) {
			await new Promise(resolve => {
				setTimeout(resolve, settleMs);
			});
		}

		server.reset();
		server.setDefault(null);
	});
}

/** Returns the text of the last message of a recorded request. */
export function promptOf(record) {
	return record.body.messages.at(-1).content;
}

/** Returns `count` independent subtasks `s0`, `s1`, ... with prompts `<prefix> <k>`. */
export function tasks(count, prefix = 'section') {
	return Array.from({length: count}, (_, k) => ({id: `s${k}`, prompt: `${prefix} ${k}`}));
}
