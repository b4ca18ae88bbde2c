// The voting view. It samples one prompt several times with `vote` and draws the
// votes as bars while the calls run (from `sample` events). It lists every
// sample with its text in the order it finished, and marks the decision point,
// the winner and the samples cancelled once the vote was settled.

import {vote} from 'parallel-task-executor';
import {$, facts, h, numberInput, percent, seconds, showError, usageText} from './dom.js';

const STATUS_LABELS = {
	running: 'running',
	ok: 'counted',
	'red-flagged': 'red-flagged',
	abstained: 'abstained',
	failed: 'failed',
	cancelled: 'cancelled',
};

function readRule(select, kInput) {
	const name = select.value;
	if (name === 'plurality' || name === 'majority') {
		return name;
	}

	const k = numberInput(kInput, {min: 1, max: 100, integer: true, name: 'K'});
	return {[name]: k};
}

/** Draws bars for `tally` ([{ answer, votes }]), scaled to the larger of `scaleTo` and the top vote. */
function renderBars(container, tally, {scaleTo, winner = null}) {
	const top = Math.max(scaleTo, ...tally.map(entry => entry.votes), 1);
	const rows = tally.map(entry => h('div', {
		className: `bar-row${entry.answer === winner ? ' winner' : ''}`,
		dataset: {answer: entry.answer, votes: String(entry.votes)},
	},
	h('span', {className: 'bar-label', title: entry.answer}, entry.answer),
	h('span', {className: 'bar-track'}, h('span', {className: 'bar-fill', style: {width: `${(entry.votes / top) * 100}%`}})),
	h('span', {className: 'bar-count'}, String(entry.votes)),
	// Always four cells: the rows share one grid.
	h('span', {}, entry.answer === winner ? h('span', {className: 'badge badge-winner'}, 'winner') : null)));
	container.replaceChildren(...(rows.length > 0 ? rows : [h('p', {className: 'muted'}, 'No votes counted yet.')]));
}

export function setupVoteView({connection, config}) {
	const root = $('#view-vote');
	const form = $('#vote-form');
	const prompt = $('#vote-prompt');
	const voters = $('#vote-voters');
	const rule = $('#vote-rule');
	const k = $('#vote-k');
	const extract = $('#vote-extract');
	const temperature = $('#vote-temperature');
	const maxTokens = $('#vote-max-tokens');
	const runButton = $('#vote-run');
	const stopButton = $('#vote-stop');
	const bars = $('#vote-bars');
	const summary = $('#vote-summary');
	const finished = $('#vote-samples');
	const running = $('#vote-running');
	const message = $('#vote-message');

	prompt.value = config.prompt ?? 'What is 2+2? Answer with a number.';
	voters.value = String(config.voters ?? 9);
	temperature.value = String(config.temperature ?? 0.8);
	maxTokens.value = String(config.maxTokens ?? 24);
	extract.value = config.extract ?? 'number';
	const configured = /^(ahead-by|first-to)-(\d+)$/.exec(config.rule ?? 'ahead-by-2');
	if (configured) {
		rule.value = configured[1] === 'ahead-by' ? 'aheadBy' : 'firstTo';
		k.value = configured[2];
	} else if (config.rule === 'plurality' || config.rule === 'majority') {
		rule.value = config.rule;
	}

	const syncRule = () => {
		k.disabled = rule.value === 'plurality' || rule.value === 'majority';
	};

	rule.addEventListener('change', syncRule);
	syncRule();

	let controller = null;
	stopButton.addEventListener('click', () => controller?.abort(new Error('stopped from the page')));

	form.addEventListener('submit', async event => {
		event.preventDefault();
		if (controller) {
			return;
		}

		message.replaceChildren();
		let options;
		try {
			options = {
				prompt: prompt.value.trim(),
				voters: numberInput(voters, {min: 1, max: 60, integer: true, name: 'Voters'}),
				rule: readRule(rule, k),
				extract: extract.value,
				concurrency: connection.concurrency(),
				provider: connection.provider({
					temperature: numberInput(temperature, {min: 0, max: 2, name: 'Temperature'}),
					maxTokens: numberInput(maxTokens, {min: 1, max: 4096, integer: true, name: 'Max tokens'}),
				}),
			};
		} catch (error) {
			showError(message, error);
			return;
		}

		controller = new AbortController();
		runButton.disabled = true;
		stopButton.disabled = false;
		root.dataset.state = 'running';
		try {
			const result = await runVote(options, controller.signal);
			renderResult(result);
			root.dataset.state = 'done';
		} catch (error) {
			showError(message, error);
			if (error.report?.tally) {
				renderResult(error.report);
			}

			root.dataset.state = 'error';
		} finally {
			controller = null;
			runButton.disabled = false;
			stopButton.disabled = true;
		}
	});

	// Live state of one run.
	let items;
	let counts;
	let decisionMarked;

	function sampleItem(index) {
		let item = items.get(index);
		if (!item) {
			const answer = h('span', {className: 'sample-answer'});
			const badge = h('span', {className: 'badge'});
			const body = h('div', {className: 'sample-text'});
			item = {
				element: h('li', {className: 'sample', dataset: {index: String(index), status: 'running'}},
					h('details', {},
						h('summary', {}, h('span', {className: 'sample-index'}, `#${index}`), answer, badge),
						body)),
				answer,
				badge,
				body,
			};
			items.set(index, item);
		}

		return item;
	}

	function setStatus(item, status, {answer = null, text = null, reason = null, error = null} = {}) {
		item.element.dataset.status = status;
		item.badge.textContent = reason ? `${STATUS_LABELS[status]} · ${reason}` : STATUS_LABELS[status];
		item.answer.textContent = answer ?? (status === 'running' ? '…' : '—');
		if (status === 'cancelled') {
			item.body.replaceChildren(h('p', {className: 'muted'}, 'Cancelled: the vote was settled (or stopped) before this call returned, so its request was aborted.'));
		} else if (error) {
			item.body.replaceChildren(h('p', {className: 'error-text'}, `${error.code ?? 'error'}: ${error.message}`));
		} else if (text !== null) {
			item.body.replaceChildren(h('pre', {}, text));
		} else {
			item.body.replaceChildren(h('p', {className: 'muted'}, 'Waiting for the reply…'));
		}
	}

	function markDecision(afterSamples, winner) {
		if (decisionMarked) {
			return;
		}

		decisionMarked = true;
		finished.append(h('li', {className: 'decision-point', dataset: {afterSamples: String(afterSamples)}},
			`Decision point: ${winner ?? 'no winner'} after ${afterSamples} samples`));
	}

	function liveTally() {
		return [...counts].map(([answer, votes]) => ({answer, votes})).sort((a, b) => b.votes - a.votes);
	}

	function onEvent(event) {
		if (event.sample === undefined || event.sample === null) {
			if (event.type === 'decided') {
				markDecision(event.afterSamples, event.winner);
			}

			return;
		}

		const item = sampleItem(event.sample);
		switch (event.type) {
			case 'attempt-start': {
				if (!item.element.isConnected) {
					setStatus(item, 'running');
					running.append(item.element);
				}

				break;
			}

			case 'sample': {
				setStatus(item, event.status, event);
				finished.append(item.element);
				if (event.status === 'ok' && event.answer !== null) {
					counts.set(event.answer, (counts.get(event.answer) ?? 0) + 1);
					renderBars(bars, liveTally(), {scaleTo: Number(voters.value) || 1});
				}

				break;
			}

			case 'cancelled': {
				setStatus(item, 'cancelled');
				finished.append(item.element);
				break;
			}

			default: {
				break;
			}
		}
	}

	async function runVote(options, signal) {
		items = new Map();
		counts = new Map();
		decisionMarked = false;
		finished.replaceChildren();
		running.replaceChildren();
		summary.replaceChildren(h('p', {className: 'muted'}, 'Running…'));
		renderBars(bars, [], {scaleTo: 1});
		return vote({...options, signal, onEvent});
	}

	function renderResult(result) {
		// The result lists every sample once, so it replaces the live state.
		for (const sample of result.samples) {
			const item = sampleItem(sample.index);
			setStatus(item, sample.status, sample);
			if (item.element.parentElement !== finished) {
				finished.append(item.element);
			}
		}

		if (result.decision) {
			markDecision(result.decision.afterSamples, result.winner);
		}

		running.replaceChildren();
		renderBars(bars, result.tally, {scaleTo: Number(voters.value) || 1, winner: result.winner});

		const count = status => result.samples.filter(sample => sample.status === status).length;
		const decision = result.decision
			? `after ${result.decision.afterSamples} samples (round ${result.decision.round + 1}, ${seconds(result.decision.atMs)})`
			: (result.decided ? 'after every sample' : 'not decided');
		summary.replaceChildren(
			h('div', {className: 'verdict', dataset: {winner: result.winner ?? ''}},
				h('span', {className: 'verdict-label'}, 'Winner'),
				h('strong', {className: 'verdict-winner'}, result.winner ?? 'none'),
				h('span', {className: `badge ${result.decided ? 'badge-ok' : 'badge-warn'}`}, result.decided ? 'decided' : 'undecided')),
			facts([
				['Agreement', `${percent(result.agreement)} · margin ${result.margin ?? 0}`],
				['Decision point', decision],
				['Counted', String(result.valid), {valid: String(result.valid)}],
				['Cancelled', String(count('cancelled')), {cancelled: String(count('cancelled'))}],
				['Red-flagged', String(count('red-flagged'))],
				['Abstained · failed', `${count('abstained')} · ${count('failed')}`],
				['Usage', `${usageText(result.usage)} · ${result.metrics?.requests ?? result.samples.length} requests · ${seconds(result.metrics?.wallMs)}`],
			]),
		);
		summary.dataset.samples = String(result.samples.length);
	}
}
