// The sectioning job of the main job: three independent facts about a topic
// run in parallel, then a summary that uses them through {{id}} placeholders.
// Prints every output, the merged result, a timeline of the calls and the
// metrics, then runs the independent subtasks again one after another and
// prints the measured speedup.

import {section} from 'parallel-task-executor';
import {createProgress} from './progress.mjs';
import {clip, seconds, timelineLines, usageText, wrapText} from './render.mjs';

/** Returns the subtasks for a topic: three independent facts, then a summary that depends on them. */
export function sectionSubtasks(topic) {
	const facts = [
		{id: 'origin', prompt: `In one short sentence, state a fact about where ${topic} comes from.`},
		{id: 'makeup', prompt: `In one short sentence, state a fact about what ${topic} is made of.`},
		{id: 'importance', prompt: `In one short sentence, state a fact about why ${topic} matters to people.`},
	];
	const summary = {
		id: 'summary',
		prompt: `Write one short paragraph about ${topic} that combines these three facts:\n1. {{origin}}\n2. {{makeup}}\n3. {{importance}}`,
	};
	return {facts, all: [...facts, summary]};
}

function outputTokens(results) {
	return results.reduce((sum, result) => sum + (result.usage?.outputTokens ?? 0), 0);
}

/** Returns the wall time of a group of subtasks inside one run, from the first start to the last finish. */
function spanMs(results) {
	const started = results.map(result => result.startedMs).filter(ms => ms !== null);
	const finished = results.map(result => result.finishedMs).filter(ms => ms !== null);
	if (started.length === 0 || finished.length === 0) {
		return null;
	}

	return Math.max(...finished) - Math.min(...started);
}

function phasesText(phases) {
	return phases.map((ids, index) => `${index + 1}: ${ids.join(', ')}`).join(' → ');
}

/** Prints a finished sectioning run. */
export function printSection(report, {print, width}) {
	print('Outputs');
	const idColumn = Math.max(...report.results.map(result => result.id.length));
	for (const result of report.results) {
		if (result.status === 'ok') {
			const [first, ...rest] = wrapText(result.text ?? '', width - idColumn - 4, 0);
			print(`  ${result.id.padEnd(idColumn)}  ${first}`);
			for (const line of rest) {
				print(`  ${' '.repeat(idColumn)}  ${line}`);
			}
		} else {
			const reason = result.error ? `: ${result.error.code} ${clip(result.error.message, 80)}` : '';
			print(`  ${result.id.padEnd(idColumn)}  [${result.status}${reason}]`);
		}
	}

	print('Merged output (merge: "ordered")');
	for (const line of wrapText(typeof report.output === 'string' ? report.output : JSON.stringify(report.output), width - 2, 2)) {
		print(line);
	}

	const {metrics} = report;
	print(`Timeline (one row per subtask, 0 to ${seconds(metrics.wallMs)})`);
	for (const line of timelineLines(report.results, metrics.wallMs, {width})) {
		print(line);
	}

	print(`Metrics: wall ${seconds(metrics.wallMs)}, busy ${seconds(metrics.busyMs)}, parallelism ${metrics.parallelism.toFixed(2)} (expected ${Number(metrics.expectedParallelism).toFixed(2)}), critical path ${seconds(metrics.criticalPathMs)}`);
	print(`Phases: ${phasesText(metrics.phases)}`);
	print(`Usage: ${usageText(report.usage)}, ${metrics.requests ?? report.results.length} requests, at most ${metrics.maxInFlight ?? '?'} in flight`);
}

async function runOnce({provider, subtasks, concurrency, options, signal, stream, title}) {
	const progress = createProgress({stream, title, total: subtasks.length});
	try {
		return await section({
			provider,
			subtasks,
			merge: 'ordered',
			concurrency,
			timeoutMs: options.timeoutMs,
			signal,
			onEvent: progress.onEvent,
		});
	} finally {
		progress.finish();
	}
}

/**
Runs the sectioning job and the sequential comparison, and prints both. Resolves
to `{ report, sequential, speedup }`, or rejects with the package's error.
*/
export async function runSection({provider, options, signal, print, stream, width}) {
	const {facts, all} = sectionSubtasks(options.topic);
	print('== Sectioning ==');
	print(`Topic: ${options.topic}`);
	print(`Subtasks: ${facts.map(fact => fact.id).join(', ')} (independent), then summary (uses {{origin}}, {{makeup}}, {{importance}}); merge "ordered", concurrency ${options.concurrency}, up to ${options.sectionMaxTokens} tokens per call, temperature 0`);

	const report = await runOnce({provider, subtasks: all, concurrency: options.concurrency, options, signal, stream, title: 'sectioning'});
	printSection(report, {print, width});

	// The same independent subtasks once more, one after another. Temperature 0
	// makes both runs generate about the same text, so the times are comparable.
	print(`Speedup check: the ${facts.length} independent subtasks again, one after another (concurrency 1)`);
	const sequential = await runOnce({provider, subtasks: facts, concurrency: 1, options, signal, stream, title: 'one after another'});
	const parallelResults = report.results.filter(result => facts.some(fact => fact.id === result.id));
	const parallelMs = spanMs(parallelResults);
	const sequentialMs = sequential.metrics.wallMs;
	const speedup = parallelMs > 0 ? sequentialMs / parallelMs : null;
	print(`  in parallel (concurrency ${options.concurrency}): ${seconds(parallelMs)} for ${outputTokens(parallelResults)} output tokens`);
	print(`  one after another (concurrency 1): ${seconds(sequentialMs)} for ${outputTokens(sequential.results)} output tokens`);
	print(`Speedup: ${speedup === null ? '-' : `${speedup.toFixed(2)}x`} (${seconds(sequentialMs)} one after another / ${seconds(parallelMs)} in parallel)`);
	return {report, sequential, speedup};
}
