// Part 3: start-up. In Node, a fresh process per run, from the moment before the
// import to the first request at the server (and from the spawn of the process).
// In workerd, a fresh Miniflare instance per run, from dispatchFetch to the first
// request at the server, beside a worker that calls fetch directly.
import path from 'node:path';
import {openaiOk, startScriptedServer} from '../../tests/support/scripted-server.mjs';
import {BENCH_DIR, runClient} from '../lib/process.mjs';
import {fmtSpread, pairedRatio, summarize} from '../lib/stats.mjs';
import {bundleWorker} from '../lib/workerd.mjs';
import {LIBRARIES} from '../clients/libraries.mjs';

const CLIENT = path.join(BENCH_DIR, 'clients', 'startup.mjs');
const NODE_LIBRARIES = ['complete', 'fetch', 'aisdk', 'langchain'];
const WORKERS = [
	{name: 'package', label: 'parallel-task-executor complete', file: 'package-worker.js'},
	{name: 'fetch', label: 'fetch', file: 'fetch-worker.js'},
];

export const title = '3. Start-up';

/** Starts the scripted server in this process; `arrivals` maps a prompt's tag to the arrival time (this process's performance.now()). */
async function startTimingServer() {
	const server = await startScriptedServer();
	const arrivals = new Map();
	server.setDefault(record => {
		const arrivedAt = record.receivedAt + (performance.now() - server.now());
		const prompt = record.body?.messages?.[0]?.content ?? '';
		const tag = /startup (\S+)/.exec(prompt)?.[1];
		if (tag && !arrivals.has(tag)) {
			arrivals.set(tag, arrivedAt);
		}

		return openaiOk('42');
	});
	return {server, arrivals};
}

async function measureNode(config, server, arrivals, log) {
	const samples = Object.fromEntries(NODE_LIBRARIES.map(name => [name, {importToRequest: [], spawnToRequest: []}]));
	for (let round = 0; round < config.startup.nodeRuns; round++) {
		const order = NODE_LIBRARIES.map((_, index) => NODE_LIBRARIES[(index + round) % NODE_LIBRARIES.length]);
		for (const name of order) {
			log(`start-up: node run ${round + 1}/${config.startup.nodeRuns}, ${name}`);
			const spawnedAt = performance.now();
			const result = await runClient(CLIENT, [name, `${server.url}/v1`]);
			const arrivedAt = arrivals.get(`importStart=${result.importStart}`);
			if (arrivedAt === undefined) {
				throw new Error(`start-up: the server saw no request from the ${name} client`);
			}

			samples[name].spawnToRequest.push(arrivedAt - spawnedAt);
			samples[name].importToRequest.push(arrivedAt + performance.timeOrigin - result.importStart);
		}
	}

	return NODE_LIBRARIES.map(name => ({
		name,
		label: LIBRARIES[name].label,
		importToRequestMs: summarize(samples[name].importToRequest),
		spawnToRequestMs: summarize(samples[name].spawnToRequest),
		importVsFetch: pairedRatio(samples[name].importToRequest, samples.fetch.importToRequest),
	}));
}

async function measureWorkerd(config, server, arrivals, log) {
	const bundles = [];
	try {
		for (const worker of WORKERS) {
			bundles.push(await bundleWorker(path.join(BENCH_DIR, 'fixtures', 'workerd', worker.file), {define: {__API_BASE__: `${server.url}/v1`}}));
		}

		const samples = WORKERS.map(() => ({ready: [], dispatchToRequest: []}));
		for (let round = 0; round < config.startup.workerdRuns; round++) {
			for (let turn = 0; turn < WORKERS.length; turn++) {
				const index = (turn + round) % WORKERS.length;
				log(`start-up: workerd run ${round + 1}/${config.startup.workerdRuns}, ${WORKERS[index].name}`);
				const instance = await bundles[index].start();
				try {
					const tag = `workerd-${index}-${round}`;
					const dispatchedAt = performance.now();
					const response = await instance.dispatchFetch(`http://localhost/?tag=${tag}`);
					const text = await response.text();
					if (text !== '42') {
						throw new Error(`the ${WORKERS[index].name} worker returned HTTP ${response.status}: ${text.slice(0, 500)}\n${instance.logs.join('\n')}`);
					}

					samples[index].ready.push(instance.readyMs);
					samples[index].dispatchToRequest.push(arrivals.get(tag) - dispatchedAt);
				} finally {
					await instance.dispose();
				}
			}
		}

		const fetchIndex = WORKERS.findIndex(worker => worker.name === 'fetch');
		return WORKERS.map((worker, index) => ({
			name: worker.name,
			label: worker.label,
			readyMs: summarize(samples[index].ready),
			dispatchToRequestMs: summarize(samples[index].dispatchToRequest),
			dispatchVsFetch: pairedRatio(samples[index].dispatchToRequest, samples[fetchIndex].dispatchToRequest),
		}));
	} finally {
		for (const bundle of bundles) {
			bundle.dispose();
		}
	}
}

export async function run(config, log) {
	const {server, arrivals} = await startTimingServer();
	try {
		const node = await measureNode(config, server, arrivals, log);
		const workerd = await measureWorkerd(config, server, arrivals, log);
		return {nodeRuns: config.startup.nodeRuns, workerdRuns: config.startup.workerdRuns, node, workerd};
	} finally {
		await server.close();
	}
}

export function render(result) {
	const lines = [
		`**Node**: ${result.nodeRuns} fresh process${result.nodeRuns === 1 ? '' : 'es'} per library, the libraries in turn. "Import → request" runs from just before the dynamic \`import()\` of the library to the arrival of its first request at the scripted server (the two processes' clocks are both \`performance.timeOrigin\`-based); "spawn → request" also includes starting Node. Milliseconds, median (min–max).`,
		'',
		'| library | import → request (ms) | vs fetch | spawn → request (ms) |',
		'|---|---|---|---|',
	];
	for (const entry of result.node) {
		lines.push(`| ${entry.label} | ${fmtSpread(entry.importToRequestMs)} | ${fmtSpread(entry.importVsFetch)} | ${fmtSpread(entry.spawnToRequestMs)} |`);
	}

	lines.push(
		'',
		`**workerd** (Miniflare, ${result.workerdRuns} fresh instance${result.workerdRuns === 1 ? '' : 's'} per worker): "ready" is the time from \`new Miniflare()\` to ready, which includes loading the worker's modules; "dispatch → request" runs from \`dispatchFetch\` on the fresh instance to the first request at the server. Milliseconds, median (min–max).`,
		'',
		'| worker | ready (ms) | dispatch → request (ms) | vs fetch worker |',
		'|---|---|---|---|',
	);
	for (const entry of result.workerd) {
		lines.push(`| ${entry.label} | ${fmtSpread(entry.readyMs)} | ${fmtSpread(entry.dispatchToRequestMs)} | ${fmtSpread(entry.dispatchVsFetch)} |`);
	}

	lines.push('');
	return lines.join('\n');
}
