// Part 6: the real local model (SmolLM2-135M behind llama.cpp with 4 slots): a
// 20-sample vote and a 20-subtask sectioning run, each at concurrency 1 and 4,
// taking turns.
import {openai, section, vote} from 'parallel-task-executor';
import {startLocalModel} from '../../scripts/local-model/index.mjs';
import {fmt, fmtSpread, pairedRatio, summarize} from '../lib/stats.mjs';

const SLOTS = 4;
const TOPICS = ['apples', 'rivers', 'bridges', 'owls', 'tea', 'clocks', 'maps', 'salt', 'bees', 'glass', 'snow', 'ropes', 'bread', 'moss', 'kites', 'ink', 'caves', 'wool', 'tides', 'lamps'];

export const title = '6. Real model';

async function timeRun(kind, options) {
	const start = performance.now();
	const result = kind === 'vote' ? await vote(options) : await section(options);
	const wallMs = performance.now() - start;
	if (kind === 'vote') {
		const answered = result.valid + result.abstained + result.redFlagged;
		return {wallMs, answered, cancelled: result.cancelled, failed: result.failed, maxInFlight: result.metrics.maxInFlight};
	}

	const answered = result.results.filter(entry => entry.status === 'ok').length;
	return {wallMs, answered, cancelled: 0, failed: result.results.length - answered, maxInFlight: result.metrics.maxInFlight};
}

export async function run(config, log) {
	const settings = config.realModel;
	// In --quick runs inside the test suite, its model server (4 slots) is reused.
	const reuse = config.quick && process.env.LOCAL_MODEL_URL;
	const server = reuse ? null : await startLocalModel({slots: SLOTS, log: line => log(`local model: ${line}`)});
	const baseURL = reuse ? process.env.LOCAL_MODEL_URL : server.baseURL;
	try {
		const provider = openai({baseURL, model: 'smollm2', maxTokens: settings.maxTokens, temperature: 0.7, seed: 1});
		const workloads = {
			vote: concurrency => ({
				provider,
				prompt: 'What is 2+2? Answer with a number.',
				voters: settings.samples,
				extract: 'number',
				concurrency,
			}),
			section: concurrency => ({
				provider,
				subtasks: Array.from({length: settings.subtasks}, (_, index) => ({
					id: `s${index}`,
					prompt: `Write one short sentence about ${TOPICS[index % TOPICS.length]}.`,
				})),
				concurrency,
			}),
		};
		const levels = [1, SLOTS];
		const runs = {vote: {1: [], 4: []}, section: {1: [], 4: []}};
		for (let round = 0; round < settings.rounds; round++) {
			for (const kind of ['vote', 'section']) {
				const order = round % 2 === 0 ? levels : [...levels].reverse();
				for (const concurrency of order) {
					log(`real model: round ${round + 1}/${settings.rounds}, ${kind} at concurrency ${concurrency}`);
					runs[kind][concurrency].push(await timeRun(kind, workloads[kind](concurrency)));
				}
			}
		}

		const summarizeKind = kind => ({
			kind,
			levels: levels.map(concurrency => ({
				concurrency,
				wallMs: summarize(runs[kind][concurrency].map(entry => entry.wallMs)),
				answered: summarize(runs[kind][concurrency].map(entry => entry.answered)),
				msPerAnswer: summarize(runs[kind][concurrency].map(entry => entry.wallMs / Math.max(1, entry.answered))),
				failed: runs[kind][concurrency].reduce((sum, entry) => sum + entry.failed, 0),
				maxInFlight: Math.max(...runs[kind][concurrency].map(entry => entry.maxInFlight)),
			})),
			speedup: pairedRatio(runs[kind][1].map(entry => entry.wallMs), runs[kind][SLOTS].map(entry => entry.wallMs)),
			perAnswerSpeedup: pairedRatio(
				runs[kind][1].map(entry => entry.wallMs / Math.max(1, entry.answered)),
				runs[kind][SLOTS].map(entry => entry.wallMs / Math.max(1, entry.answered)),
			),
		});

		return {
			settings,
			slots: SLOTS,
			serverSource: reuse ? 'the test suite\'s model server' : `started by the benchmark (${SLOTS} slots, 1 thread)`,
			vote: summarizeKind('vote'),
			section: summarizeKind('section'),
		};
	} finally {
		await server?.stop();
	}
}

export function render(result) {
	const {settings} = result;
	const lines = [
		`SmolLM2-135M-Instruct behind llama.cpp, ${result.serverSource}, on the same 2-core machine as the client. Provider: \`maxTokens: ${settings.maxTokens}, temperature: 0.7, seed: 1\`. The vote asks "What is 2+2?" of ${settings.samples} voters (plurality, number extraction); the sectioning run has ${settings.subtasks} independent one-sentence subtasks. ${settings.rounds} rounds, concurrency 1 and ${result.slots} taking turns; median (min–max). Plurality stops once no answer can catch the leader, so "answered" can be below ${settings.samples}; the speedup per answer corrects for that.`,
		'',
		'| run | concurrency | wall (s) | answered | ms per answer | max in flight |',
		'|---|---|---|---|---|---|',
	];
	for (const kind of [result.vote, result.section]) {
		for (const level of kind.levels) {
			lines.push(`| ${kind.kind} | ${level.concurrency} | ${fmtSpread({...level.wallMs, median: level.wallMs.median / 1000, min: level.wallMs.min / 1000, max: level.wallMs.max / 1000})} | ${fmtSpread(level.answered)} | ${fmtSpread(level.msPerAnswer)} | ${level.maxInFlight} |`);
		}
	}

	lines.push(
		'',
		`Speedup of concurrency ${result.slots} over 1 (paired by round): vote ${fmtSpread(result.vote.speedup)}× in wall time, ${fmtSpread(result.vote.perAnswerSpeedup)}× per answer; sectioning ${fmtSpread(result.section.speedup)}× in wall time.`,
		'',
	);
	const failed = [result.vote, result.section].flatMap(kind => kind.levels).reduce((sum, level) => sum + level.failed, 0);
	if (failed > 0) {
		lines.push(`${fmt(failed)} calls failed across all runs.`, '');
	}

	return lines.join('\n');
}
