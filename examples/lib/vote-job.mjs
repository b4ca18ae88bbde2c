// The vote of the main job: samples one question several times, counts the
// answers by a rule, and prints the tally, the winner, the decision point and
// what happened to every sample.

import {vote} from 'parallel-task-executor';
import {describeRule} from './options.mjs';
import {createProgress} from './progress.mjs';
import {percent, seconds, tallyLines, usageText} from './render.mjs';

function sampleList(samples) {
	return samples.map(sample => (sample.reason ? `#${sample.index} ${sample.reason}` : `#${sample.index}`)).join(', ');
}

function decisionText(result) {
	if (!result.decided) {
		const reason = result.tie ? 'a tie' : 'no answer met the rule';
		return `none: ${reason} after ${result.samples.length} samples`;
	}

	if (result.decision) {
		const {afterSamples, round, atMs} = result.decision;
		return `after ${afterSamples} samples (round ${round + 1}, at ${seconds(atMs)})`;
	}

	return `after all ${result.samples.length} samples (the rule counts every sample)`;
}

/**
Prints a finished vote. `print` takes one line.
*/
export function printVote(result, print) {
	print('Tally (votes per answer)');
	for (const line of tallyLines(result.tally, {winner: result.winner})) {
		print(line);
	}

	const byStatus = status => result.samples.filter(sample => sample.status === status);
	const leaderVotes = Math.max(0, ...result.tally.map(entry => entry.votes));
	print(`Winner: ${result.winner ?? 'none'}${result.tie ? ' (tie)' : ''}`);
	print(`Decided: ${result.decided ? 'yes' : 'no'}`);
	// Agreement is the leading answer's share of the counted votes.
	print(`Agreement: ${percent(result.agreement)} (${leaderVotes} of ${result.valid} counted votes, margin ${result.margin ?? 0})`);
	print(`Decision point: ${decisionText(result)}`);
	for (const [label, status] of [['Cancelled', 'cancelled'], ['Red-flagged', 'red-flagged'], ['Abstained', 'abstained'], ['Failed', 'failed']]) {
		const samples = byStatus(status);
		print(`${label}: ${samples.length}${samples.length > 0 ? ` (${sampleList(samples)})` : ''}`);
	}

	const requests = result.metrics?.requests ?? result.samples.length;
	print(`Usage: ${usageText(result.usage)}, ${requests} requests, wall ${seconds(result.metrics?.wallMs)}`);
}

/**
Runs the vote and prints it. Resolves to the result, or rejects with the
package's error when the vote fails.
*/
export async function runVote({provider, options, signal, print, stream}) {
	print('== Vote ==');
	print(`Prompt: ${options.prompt}`);
	const maxSamples = options.maxSamples ? `, at most ${options.maxSamples} samples` : '';
	print(`Settings: ${options.voters} voters, rule ${describeRule(options.rule)}, extract ${options.extract}, temperature ${options.temperature}, up to ${options.maxTokens} tokens per sample, concurrency ${options.concurrency}${maxSamples}`);

	const progress = createProgress({stream, title: 'vote', total: options.voters});
	let result;
	try {
		result = await vote({
			provider,
			prompt: options.prompt,
			voters: options.voters,
			rule: options.rule,
			extract: options.extract,
			maxSamples: options.maxSamples ?? undefined,
			concurrency: options.concurrency,
			timeoutMs: options.timeoutMs,
			signal,
			onEvent: progress.onEvent,
		});
	} finally {
		progress.finish();
	}

	printVote(result, print);
	return result;
}
