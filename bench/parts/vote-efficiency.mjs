// Part 5: vote efficiency. Simulated voters of known accuracy run through the
// real scheduler (clients/vote-sim.mjs). Their mean sample counts and error rates
// are shown next to the closed-form values for the same two-answer model.
import path from 'node:path';
import {aheadBy, aheadByCapped, firstTo, plurality} from '../lib/closed-form.mjs';
import {BENCH_DIR, runClient} from '../lib/process.mjs';
import {fmt, median} from '../lib/stats.mjs';

const CLIENT = path.join(BENCH_DIR, 'clients', 'vote-sim.mjs');
const CLOSED_FORM = {plurality, firstTo, aheadBy};

export const title = '5. Vote efficiency';

/** Returns the 95% Wilson score interval of a proportion. */
function wilson(successes, trials) {
	const z = 1.96;
	const phat = successes / trials;
	const denominator = 1 + (z * z) / trials;
	const centre = (phat + (z * z) / (2 * trials)) / denominator;
	const half = (z * Math.sqrt((phat * (1 - phat)) / trials + (z * z) / (4 * trials * trials))) / denominator;
	return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export async function run(config, log) {
	const settings = config.voteEfficiency;
	log(`vote efficiency: ${settings.trials} trials per cell`);
	const result = await runClient(CLIENT, [JSON.stringify(settings)], {timeoutMs: 1_200_000});
	const cells = result.cells.map(cell => {
		const exact = CLOSED_FORM[cell.rule](cell.p, cell.k);
		const errorInterval = wilson(cell.wrong, cell.trials);
		// Agreement: the simulated error inside its 95% interval around the closed
		// form, and the mean sample count within four standard errors of it.
		const errorStdError = Math.sqrt((exact.error * (1 - exact.error)) / cell.trials);
		const errorAgrees = Math.abs(cell.wrong / cell.trials - exact.error) <= (1.96 * errorStdError) + (1 / cell.trials);
		const samplesAgree = Math.abs(cell.meanCalls - exact.samples) <= (4 * cell.meanCallsStdError) + 0.01;
		return {...cell, closedForm: exact, errorRate: cell.wrong / cell.trials, errorInterval, errorAgrees, samplesAgree};
	});

	const capEffect = Math.max(...settings.ps.flatMap(p => settings.ks.map(k => aheadByCapped(p, k, settings.maxSamples).undecided)));

	// The headline: for each plurality size, the cheapest ahead-by-k whose exact
	// error is no higher, and the samples it saves.
	const headline = [];
	for (const p of settings.ps) {
		for (const n of settings.pluralityN) {
			const base = cells.find(cell => cell.p === p && cell.rule === 'plurality' && cell.k === n);
			const match = cells
				.filter(cell => cell.p === p && cell.rule === 'aheadBy' && cell.closedForm.error <= base.closedForm.error)
				.sort((a, b) => a.closedForm.samples - b.closedForm.samples)[0];
			headline.push({
				p,
				n,
				pluralityError: base.closedForm.error,
				aheadByK: match?.k ?? null,
				aheadByError: match?.closedForm.error ?? null,
				aheadBySamples: match?.meanCalls ?? null,
				aheadBySamplesClosedForm: match?.closedForm.samples ?? null,
				// Exact, from the closed forms; the simulated share is the check.
				savedShare: match ? 1 - (match.closedForm.samples / n) : null,
				savedShareSimulated: match ? 1 - (match.meanCalls / n) : null,
			});
		}
	}

	return {settings, seconds: result.seconds, cells, capEffect, headline};
}

const pct = value => `${fmt(value * 100, 3)}%`;

/** Describes a share of samples saved; a negative share means more samples. */
function saving(share) {
	return share >= 0 ? `${pct(share)} fewer` : `${pct(-share)} more`;
}

export function render(result) {
	const {settings} = result;
	const matched = result.headline.filter(entry => entry.savedShare !== null);
	const saved = matched.map(entry => entry.savedShare);
	const agreeing = result.cells.filter(cell => cell.errorAgrees && cell.samplesAgree).length;
	const lines = [
		`Model simulated: independent voters that give the right answer with probability p and the **one** wrong answer otherwise, so the binomial (plurality), negative binomial (first-to-k) and gambler's-ruin (ahead-by-k) formulas apply exactly. Every vote runs through \`vote()\` with a \`custom\` provider that answers after one turn of the event loop; each call's answer is drawn from a seeded generator keyed by (cell, trial, sample), seed ${settings.seed}. ${settings.trials} votes per cell, ${settings.parallelVotes} votes in flight at once (${fmt(result.seconds)} s for all cells). Plurality of N runs all N voters at concurrency N; first-to-k and ahead-by-k start with k voters and top up, with \`maxSamples: ${settings.maxSamples}\` (the cap changes the ahead-by-k figures by at most ${fmt(result.capEffect, 2)} in probability).`,
		'',
		'"Samples" is the mean number of provider calls made per vote, counted inside the provider; the error is the share of votes whose winner is not the right answer (undecided votes count as wrong), with its 95% Wilson interval.',
		'',
	];

	if (matched.length > 0) {
		const costlier = matched.filter(entry => entry.savedShare < 0);
		const best = matched.reduce((a, b) => (b.savedShare > a.savedShare ? b : a));
		lines.push(`**Headline:** against plurality of N, the cheapest ahead-by-k with equal or lower exact error needed ${saving(median(saved))} samples in the median over the ${matched.length} (p, N) pairs where some k ≤ ${Math.max(...settings.ks)} reaches that error (from ${saving(Math.min(...saved))} to ${saving(Math.max(...saved))}; the best: ahead-by-${best.aheadByK} against plurality of ${best.n} at p = ${best.p}). ${costlier.length > 0 ? `It needed more samples than plurality only for ${costlier.map(entry => `N = ${entry.n} at p = ${entry.p}`).join(', ')}.` : 'It never needed more samples than plurality.'} First-to-k has exactly the error of plurality of 2k − 1 and stops sooner. Savings use the exact expected sample counts; the simulated ones are beside them.`, '');
	}

	lines.push(
		`Simulation and closed form agree (error inside the interval around the exact value, samples within four standard errors) in ${agreeing} of ${result.cells.length} cells.`,
		'',
		'| p | plurality N | its error (exact) | cheapest ahead-by-k with error ≤ that | its error (exact) | its samples (simulated / exact) | samples saved (exact / simulated) |',
		'|---|---|---|---|---|---|---|',
	);
	for (const entry of result.headline) {
		if (entry.aheadByK === null) {
			lines.push(`| ${entry.p} | ${entry.n} | ${fmt(entry.pluralityError)} | none with k ≤ ${Math.max(...settings.ks)} | | | |`);
		} else {
			lines.push(`| ${entry.p} | ${entry.n} | ${fmt(entry.pluralityError)} | k = ${entry.aheadByK} | ${fmt(entry.aheadByError)} | ${fmt(entry.aheadBySamples)} / ${fmt(entry.aheadBySamplesClosedForm)} | ${pct(entry.savedShare)} / ${pct(entry.savedShareSimulated)} |`);
		}
	}

	lines.push('', 'All cells:', '', '| p | rule | samples (simulated ± s.e.) | samples (exact) | error (simulated, 95% interval) | error (exact) | agree |', '|---|---|---|---|---|---|---|');
	for (const cell of result.cells) {
		const rule = cell.rule === 'plurality' ? `plurality N = ${cell.k}` : `${cell.rule} k = ${cell.k}`;
		const interval = `${fmt(cell.errorInterval[0], 2)}–${fmt(cell.errorInterval[1], 2)}`;
		lines.push(`| ${cell.p} | ${rule} | ${fmt(cell.meanCalls)} ± ${fmt(cell.meanCallsStdError, 2)} | ${fmt(cell.closedForm.samples)} | ${fmt(cell.errorRate)} (${interval}) | ${fmt(cell.closedForm.error)} | ${cell.errorAgrees && cell.samplesAgree ? 'yes' : 'no'} |`);
	}

	lines.push('');
	return lines.join('\n');
}
