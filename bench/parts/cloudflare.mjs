// Part 8: a large sectioning job through Cloudflare Queues and a Durable Object per job
// (parallel-task-executor/cloudflare), in Miniflare, in memory and offline, against
// the scripted server in this process. It measures subtasks per second from the start
// of the job to its finished merge, and counts duplicate and lost results (both must
// be 0), with and without injected faults.
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {openaiError, openaiOk, startScriptedServer} from '../../tests/support/scripted-server.mjs';
import {QUEUE_MAX_RETRIES, startCloudflareWorker} from '../../tests/runtimes/cloudflare/harness.mjs';
import {REPO_ROOT} from '../lib/process.mjs';
import {fmt, fmtSpread, summarize} from '../lib/stats.mjs';

export const title = '8. Cloudflare Queues';

const POLL_MS = 25;
// Every 20th subtask depends on the one before it.
const DEPENDENT_EVERY = 20;
const FAULTS = {loseRecordEvery: 37, recordTwiceEvery: 101, throwOnBatches: [3]};

function tagOf(record) {
	const text = record.body?.messages?.at(-1)?.content ?? '';
	return /\[([\w-]+)\]$/.exec(text)?.[1] ?? null;
}

function job(subtasks) {
	return {
		maxRetries: 2,
		retry: {baseDelayMs: 10},
		subtasks: Array.from({length: subtasks}, (_, index) => (index % DEPENDENT_EVERY === DEPENDENT_EVERY - 1
			? {id: `s${index}`, prompt: `Extend {{s${index - 1}}}. [s${index}]`}
			: {id: `s${index}`, prompt: `Part ${index}. [s${index}]`})),
	};
}

/** Scripts a reply to every subtask after `latencyMs`. With `flaky`, every 97th subtask first fails once with HTTP 500. */
function answer(server, latencyMs, flaky) {
	const seen = new Set();
	server.setDefault(record => {
		const tag = tagOf(record);
		const index = Number(tag?.slice(1));
		if (flaky && index % 97 === 3 && !seen.has(tag)) {
			seen.add(tag);
			return openaiError(500, 'internal error');
		}

		return openaiOk(`out-${tag}`, {delayMs: latencyMs});
	});
}

/** Counts what the job's report and the server show: results and calls per subtask. */
function audit(report, server, subtasks, flaky) {
	const expected = job(subtasks).subtasks.map(subtask => subtask.id);
	const ids = report.results.map(result => result.id);
	const unique = new Set(ids);
	const calls = new Map();
	for (const record of server.requests()) {
		const tag = tagOf(record);
		calls.set(tag, (calls.get(tag) ?? 0) + 1);
	}

	// A subtask that failed once is called twice by design; any other repeat is a repeated call.
	const repeatedCalls = expected.filter(id => (calls.get(id) ?? 0) > ((flaky && Number(id.slice(1)) % 97 === 3) ? 2 : 1)).length;
	return {
		results: ids.length,
		duplicateResults: ids.length - unique.size,
		lostResults: expected.filter(id => !unique.has(id)).length,
		notOk: report.results.filter(result => result.status !== 'ok').length,
		repeatedCalls,
		requests: server.requests().length,
		maxInFlight: server.stats().maxInFlight,
	};
}

async function runJob(worker, server, name, subtasks, {faults = {}, flaky = false, latencyMs}) {
	server.reset();
	answer(server, latencyMs, flaky);
	await worker.call('/faults', faults);
	const started = performance.now();
	const start = await worker.call('/job/start', {job: name, kind: 'section', payload: job(subtasks), limits: LIMITS});
	if (!start.ok) {
		throw new Error(`the job did not start: ${JSON.stringify(start.error)}`);
	}

	const status = await worker.waitFor(`/job/status?job=${name}`, value => value.state === 'done', {timeoutMs: 600_000, everyMs: POLL_MS});
	const wallMs = performance.now() - started;
	const result = await worker.call(`/job/result?job=${name}`);
	if (!result.ok) {
		throw new Error(`the job failed: ${JSON.stringify(result.error)}`);
	}

	const consumer = await worker.call('/consumer');
	return {
		wallMs,
		perSecond: subtasks / (wallMs / 1000),
		batches: consumer.batches,
		redelivered: status.redelivered,
		duplicateRecords: status.duplicates,
		lostRecordResponses: consumer.lostRecords,
		...audit(result.report, server, subtasks, flaky),
	};
}

const LIMITS = {plan: 'paid', queueBatchSize: 50, queueMaxRetries: QUEUE_MAX_RETRIES};

export async function run(config, log) {
	const {subtasks, runs, latencyMs} = config.cloudflare;
	const server = await startScriptedServer();
	let worker;
	try {
		worker = await startCloudflareWorker(server, {batchSize: LIMITS.queueBatchSize});
		log(`cloudflare: warm-up job of ${Math.min(100, subtasks)} subtasks`);
		await runJob(worker, server, 'warm-up', Math.min(100, subtasks), {latencyMs});
		const clean = [];
		for (let round = 0; round < runs; round++) {
			log(`cloudflare: ${subtasks} subtasks through the queue, run ${round + 1}/${runs}`);
			clean.push(await runJob(worker, server, `clean-${round}`, subtasks, {latencyMs}));
		}

		log(`cloudflare: ${subtasks} subtasks with injected faults`);
		const faulted = await runJob(worker, server, 'faulted', subtasks, {latencyMs, faults: FAULTS, flaky: true});

		log(`cloudflare: ${subtasks} subtasks in-process in one request, for reference`);
		server.reset();
		answer(server, latencyMs, false);
		const started = performance.now();
		const inProcess = await worker.call('/in-process', {kind: 'section', options: job(subtasks)});
		const inProcessMs = performance.now() - started;
		if (!inProcess.ok) {
			throw new Error(`the in-process section failed: ${JSON.stringify(inProcess.error)}`);
		}

		return {
			subtasks,
			runs,
			latencyMs,
			batchSize: LIMITS.queueBatchSize,
			miniflare: miniflareVersion(),
			clean,
			wallMs: summarize(clean.map(entry => entry.wallMs)),
			perSecond: summarize(clean.map(entry => entry.perSecond)),
			faulted,
			inProcess: {wallMs: inProcessMs, perSecond: subtasks / (inProcessMs / 1000), maxInFlight: server.stats().maxInFlight},
		};
	} finally {
		await worker?.dispose();
		await server.close();
	}
}

function miniflareVersion() {
	return JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', 'miniflare', 'package.json'), 'utf8')).version;
}

const yesNo = value => (value ? 'yes' : 'no');

export function render(result) {
	const cleanTotals = result.clean.reduce((sum, entry) => ({duplicates: sum.duplicates + entry.duplicateResults, lost: sum.lost + entry.lostResults, repeated: sum.repeated + entry.repeatedCalls}), {duplicates: 0, lost: 0, repeated: 0});
	const maxInFlight = Math.max(...result.clean.map(entry => entry.maxInFlight), result.faulted.maxInFlight);
	const {faulted} = result;
	const lines = [
		`A sectioning job of ${result.subtasks.toLocaleString('en-US')} subtasks (every ${DEPENDENT_EVERY}th builds on the one before it, so the Durable Object releases ${Math.floor(result.subtasks / DEPENDENT_EVERY)} of them as their dependencies are recorded) through \`startJob\`, a queue consumer running \`consumeQueueBatch\` and a \`JobObject\` per job, in Miniflare ${result.miniflare} (in memory, offline), with a consumer batch of ${result.batchSize} messages. The scripted server runs in the benchmark's process and replies after ${result.latencyMs} ms. Wall time runs from the start request to the status poll (every ${POLL_MS} ms) that sees the merged report. Locally Miniflare delivers one batch at a time, while production runs up to 250 consumer invocations at once, so this is the throughput of one consumer and not of the service.`,
		'',
		'| run | wall (s) | subtasks per second | batches | max in flight | duplicate results | lost results | repeated calls |',
		'|---|---|---|---|---|---|---|---|',
		`| ${result.runs === 1 ? '1 clean run' : `${result.runs} clean runs, median (min–max)`} | ${fmtSpread(summarizeSeconds(result.wallMs))} | ${fmtSpread(result.perSecond)} | ${result.clean[0].batches} | ${Math.max(...result.clean.map(entry => entry.maxInFlight))} | ${cleanTotals.duplicates} | ${cleanTotals.lost} | ${cleanTotals.repeated} |`,
		`| with faults (below) | ${fmt(faulted.wallMs / 1000)} | ${fmt(faulted.perSecond)} | ${faulted.batches} | ${faulted.maxInFlight} | ${faulted.duplicateResults} | ${faulted.lostResults} | ${faulted.repeatedCalls} |`,
		`| reference: \`section\` in one request, 6 calls open | ${fmt(result.inProcess.wallMs / 1000)} | ${fmt(result.inProcess.perSecond)} | | ${result.inProcess.maxInFlight} | | | |`,
		'',
		`The faulted run lost the response of every 37th record (the object stored the outcome, the consumer retried the message), sent every 101st record twice, failed one consumer invocation after it had handled its batch, and answered every 97th subtask with HTTP 500 once (retried by the queue with backoff). The object acknowledged ${faulted.redelivered} redelivered messages without a call and refused ${faulted.duplicateRecords} second records; ${faulted.notOk} subtasks did not end \`ok\`.`,
		'',
		`- Every subtask in the report exactly once (no duplicate, no lost result) in every run: **${yesNo(cleanTotals.duplicates + cleanTotals.lost + faulted.duplicateResults + faulted.lostResults === 0)}**.`,
		`- No call repeated beyond the retries of a failed call: **${yesNo(cleanTotals.repeated + faulted.repeatedCalls === 0)}**.`,
		`- At most 6 requests in flight in one consumer invocation: **${yesNo(maxInFlight <= 6)}** (${maxInFlight}).`,
		'',
		`The reference row runs the same job as one \`section\` call inside one Worker request, in ${fmt(result.inProcess.wallMs / result.wallMs.median)}× the queue's median wall time. It needs one subrequest per call in that one invocation: 50 on the free plan, 10,000 by default on the paid plan. The queue path spends a Durable Object claim and record per message and one queue delivery per batch, and in exchange no invocation makes more calls than its batch holds, and redelivered messages count once.`,
		'',
	];
	return lines.join('\n');
}

function summarizeSeconds(summary) {
	return {...summary, median: summary.median / 1000, min: summary.min / 1000, max: summary.max / 1000};
}
