// The weighted-scoring view. Criteria carry weights and a pass score (0-100).
// "Run with the model" samples candidates with `vote` and a judge (the same
// endpoint) that scores each one; "Score by hand" applies `aggregate` to
// answers and scores typed into a table, with no model and no network.

import {aggregate, vote} from 'parallel-task-executor';
import {$, facts, h, numberInput, seconds, showError, usageText} from './dom.js';

const DEFAULT_CRITERIA = [
	{name: 'accuracy', weight: 40},
	{name: 'clarity', weight: 30},
	{name: 'style', weight: 30},
];

const DEFAULT_ANSWERS = [
	{answer: 'Fresh bread, baked before you wake.', scores: [7, 9, 8]},
	{answer: 'We knead you.', scores: [6, 7, 9]},
	{answer: 'Bread. Cakes. Coffee. Open at 6.', scores: [9, 8, 5]},
];

/**
Builds a JSON schema response format for the judge's reply: one integer from 0 to 10 per criterion.
OpenAI-compatible servers that support structured output (OpenAI, llama.cpp)
then return parseable JSON even from a small model.
*/
function judgeSchema(criteria) {
	return {
		type: 'json_schema',
		json_schema: {
			name: 'scores',
			strict: true,
			schema: {
				type: 'object',
				properties: Object.fromEntries(criteria.map(criterion => [criterion.name, {type: 'integer', minimum: 0, maximum: 10}])),
				required: criteria.map(criterion => criterion.name),
				additionalProperties: false,
			},
		},
	};
}

export function setupScoreView({connection}) {
	const root = $('#view-score');
	const modeModel = $('#score-mode-model');
	const modeOffline = $('#score-mode-offline');
	const modelPanel = $('#score-model');
	const offlinePanel = $('#score-offline');
	const criteriaBody = $('#criteria-body');
	const passScore = $('#pass-score');
	const tie = $('#score-tie');
	const prompt = $('#score-prompt');
	const candidates = $('#score-candidates');
	const temperature = $('#score-temperature');
	const maxTokens = $('#score-max-tokens');
	const constrain = $('#score-constrain');
	const runButton = $('#score-run');
	const answersTable = $('#answers-table');
	const matrix = $('#score-matrix');
	const summary = $('#score-summary');
	const message = $('#score-message');

	// Criteria editor.
	function addCriterion({name = '', weight = 10} = {}) {
		const row = h('tr', {className: 'criterion'},
			h('td', {}, h('input', {className: 'criterion-name', value: name, placeholder: 'name', attrs: {'aria-label': 'Criterion name'}})),
			h('td', {}, h('input', {className: 'criterion-weight', type: 'number', min: '0', step: 'any', value: String(weight), attrs: {'aria-label': 'Weight'}})),
			h('td', {}, h('button', {type: 'button', className: 'icon-button', title: 'Remove this criterion', textContent: '×', onclick() {
				row.remove();
				changed();
			}})));
		criteriaBody.append(row);
	}

	function readCriteria() {
		return [...criteriaBody.querySelectorAll('tr.criterion')].map((row, i) => ({
			name: row.querySelector('.criterion-name').value.trim(),
			weight: numberInput(row.querySelector('.criterion-weight'), {min: 0, name: `Weight of criterion ${i + 1}`}),
		}));
	}

	function readRule() {
		return {score: {criteria: readCriteria(), passScore: numberInput(passScore, {min: 0, max: 100, name: 'Pass score'})}};
	}

	// The offline answer table: one row per answer, one score input per criterion.
	const answers = DEFAULT_ANSWERS.map(entry => ({...entry, scores: [...entry.scores]}));

	function renderAnswersTable() {
		let criteria;
		try {
			criteria = readCriteria();
		} catch {
			criteria = [...criteriaBody.querySelectorAll('.criterion-name')].map(input => ({name: input.value}));
		}

		const head = h('tr', {}, h('th', {}, 'Answer'), criteria.map(criterion => h('th', {}, criterion.name || '?')), h('th', {}));
		const rows = answers.map((entry, row) => h('tr', {},
			h('td', {}, h('input', {className: 'answer-text', value: entry.answer, attrs: {'aria-label': `Answer ${row + 1}`}, oninput(event) {
				entry.answer = event.target.value;
				changed();
			}})),
			criteria.map((criterion, column) => h('td', {}, h('input', {
				className: 'answer-score',
				type: 'number',
				min: '0',
				max: '10',
				step: 'any',
				value: String(entry.scores[column] ?? 5),
				attrs: {'aria-label': `Score of answer ${row + 1} on ${criterion.name}`},
				oninput(event) {
					entry.scores[column] = event.target.value === '' ? null : Number(event.target.value);
					changed();
				},
			}))),
			h('td', {}, h('button', {type: 'button', className: 'icon-button', title: 'Remove this answer', textContent: '×', onclick() {
				answers.splice(row, 1);
				renderAnswersTable();
				changed();
			}}))));
		answersTable.replaceChildren(h('thead', {}, head), h('tbody', {}, rows));
	}

	function renderMatrix(result, criteria) {
		const scored = result.scores ?? [];
		const head = h('tr', {}, h('th', {}, 'Candidate'), criteria.map(criterion => h('th', {className: 'num'}, `${criterion.name} (${criterion.weight})`)), h('th', {className: 'num'}, 'Total'), h('th', {}, 'Pass'));
		const rows = scored.map(candidate => {
			const isWinner = candidate.answer === result.winner;
			return h('tr', {className: isWinner ? 'winner' : '', dataset: {total: String(candidate.total ?? ''), passed: String(candidate.passed)}},
				h('td', {className: 'candidate'}, h('span', {}, candidate.answer), isWinner ? h('span', {className: 'badge badge-winner'}, 'winner') : null,
					candidate.problem ? h('div', {className: 'error-text'}, candidate.problem) : null),
				criteria.map(criterion => h('td', {className: 'num'}, candidate.scores ? String(candidate.scores[criterion.name] ?? '–') : '–')),
				h('td', {className: 'num total'}, candidate.total === null ? '–' : String(Number(candidate.total.toFixed(2)))),
				h('td', {}, candidate.passed === null ? '–' : (candidate.passed ? '✓' : '✗')));
		});
		matrix.replaceChildren(h('thead', {}, head), h('tbody', {}, rows));

		const threshold = result.rule === 'score' ? passScore.value : '';
		let verdict = 'no winner';
		if (result.winner !== null) {
			verdict = result.passed ? `passes (total ≥ ${threshold})` : `does not pass (total < ${threshold})`;
		}

		summary.replaceChildren(h('div', {className: 'verdict', dataset: {winner: result.winner ?? '', passed: String(result.passed)}},
			h('span', {className: 'verdict-label'}, 'Winner'),
			h('strong', {className: 'verdict-winner'}, result.winner ?? 'none'),
			h('span', {className: `badge ${result.passed ? 'badge-ok' : 'badge-warn'}`}, verdict),
			result.tie ? h('span', {className: 'badge badge-warn'}, 'tie') : null));
		if (result.usage) {
			summary.append(facts([['Usage', `${usageText(result.usage)} · ${result.metrics?.requests ?? '?'} requests · ${seconds(result.metrics?.wallMs)}`]]));
		}
	}

	function runOffline() {
		message.replaceChildren();
		try {
			const rule = readRule();
			const input = answers.map(entry => ({
				answer: entry.answer,
				scores: Object.fromEntries(rule.score.criteria.map((criterion, i) => [criterion.name, entry.scores[i]])),
			}));
			const result = aggregate(input, {rule, tie: tie.value});
			renderMatrix(result, rule.score.criteria);
			root.dataset.state = 'done';
		} catch (error) {
			showError(message, error);
			matrix.replaceChildren();
			summary.replaceChildren();
			root.dataset.state = 'error';
		}
	}

	function changed() {
		if (modeOffline.checked) {
			runOffline();
		}
	}

	function syncMode() {
		modelPanel.hidden = !modeModel.checked;
		offlinePanel.hidden = !modeOffline.checked;
		matrix.replaceChildren();
		summary.replaceChildren();
		message.replaceChildren();
		root.dataset.mode = modeOffline.checked ? 'offline' : 'model';
		if (modeOffline.checked) {
			renderAnswersTable();
			runOffline();
		}
	}

	for (const criterion of DEFAULT_CRITERIA) {
		addCriterion(criterion);
	}

	criteriaBody.addEventListener('input', () => {
		if (modeOffline.checked) {
			renderAnswersTable();
			runOffline();
		}
	});
	$('#criterion-add').addEventListener('click', () => {
		addCriterion({name: `criterion${criteriaBody.children.length + 1}`});
		changed();
		if (modeOffline.checked) {
			renderAnswersTable();
		}
	});
	$('#answer-add').addEventListener('click', () => {
		answers.push({answer: `Answer ${answers.length + 1}`, scores: []});
		renderAnswersTable();
		changed();
	});
	passScore.addEventListener('input', changed);
	tie.addEventListener('change', changed);
	modeModel.addEventListener('change', syncMode);
	modeOffline.addEventListener('change', syncMode);
	syncMode();

	let running = false;
	runButton.addEventListener('click', async () => {
		if (running) {
			return;
		}

		message.replaceChildren();
		let options;
		let criteria;
		try {
			const rule = readRule();
			criteria = rule.score.criteria;
			const judgeBody = constrain.checked && connection.isOpenAiCompatible() ? {response_format: judgeSchema(criteria)} : undefined;
			const tokens = numberInput(maxTokens, {min: 1, max: 4096, integer: true, name: 'Max tokens'});
			options = {
				prompt: prompt.value.trim(),
				voters: numberInput(candidates, {min: 1, max: 20, integer: true, name: 'Candidates'}),
				extract: 'text',
				rule,
				tie: tie.value,
				concurrency: connection.concurrency(),
				provider: connection.provider({temperature: numberInput(temperature, {min: 0, max: 2, name: 'Temperature'}), maxTokens: tokens}),
				judge: connection.provider({temperature: 0.2, maxTokens: 24 + (12 * criteria.length), extraBody: judgeBody}),
			};
		} catch (error) {
			showError(message, error);
			return;
		}

		running = true;
		runButton.disabled = true;
		root.dataset.state = 'running';
		matrix.replaceChildren();
		summary.replaceChildren(h('p', {className: 'muted'}, 'Sampling candidates, then asking the judge to score each one…'));
		try {
			const result = await vote(options);
			renderMatrix(result, criteria);
			root.dataset.state = 'done';
		} catch (error) {
			showError(message, error);
			summary.replaceChildren();
			if (error.report?.scores) {
				renderMatrix(error.report, criteria);
			}

			root.dataset.state = 'error';
		} finally {
			running = false;
			runButton.disabled = false;
		}
	});
}
