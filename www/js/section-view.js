// The sectioning view: an editable list of subtasks ({{id}} in a prompt makes a
// dependency), a live timeline with one lane per subtask call drawn from
// attempt-start, attempt-end and subtask-end events, and the merged output.

import {section} from 'parallel-task-executor';
import {$, facts, h, numberInput, seconds, showError, usageText} from './dom.js';

const PLACEHOLDER = /{{\s*([A-Za-z0-9_-]+)\s*}}/g;

function exampleSubtasks(topic) {
	return [
		{id: 'origin', prompt: `In one short sentence, state a fact about where ${topic} comes from.`},
		{id: 'makeup', prompt: `In one short sentence, state a fact about what ${topic} is made of.`},
		{id: 'importance', prompt: `In one short sentence, state a fact about why ${topic} matters to people.`},
		{id: 'summary', prompt: `Write one short paragraph about ${topic} that combines these three facts:\n1. {{origin}}\n2. {{makeup}}\n3. {{importance}}`},
	];
}

function dependencies(prompt) {
	return [...new Set([...prompt.matchAll(PLACEHOLDER)].map(match => match[1]))];
}

function niceStep(rawStep) {
	const power = 10 ** Math.floor(Math.log10(rawStep));
	return [1, 2, 2.5, 5, 10].map(factor => factor * power).find(step => step >= rawStep);
}

export function setupSectionView({connection, config}) {
	const root = $('#view-section');
	const form = $('#section-form');
	const list = $('#subtask-list');
	const maxTokens = $('#section-max-tokens');
	const temperature = $('#section-temperature');
	const merge = $('#section-merge');
	const runButton = $('#section-run');
	const stopButton = $('#section-stop');
	const timeline = $('#timeline');
	const axis = $('#timeline-axis');
	const metrics = $('#section-metrics');
	const outputs = $('#section-outputs');
	const merged = $('#section-merged');
	const message = $('#section-message');

	maxTokens.value = String(config.sectionMaxTokens ?? 48);

	function refreshDependencies() {
		const ids = new Set([...list.querySelectorAll('.subtask-id')].map(input => input.value.trim()));
		for (const row of list.children) {
			const prompt = row.querySelector('.subtask-prompt').value;
			const deps = dependencies(prompt);
			const note = row.querySelector('.subtask-deps');
			note.replaceChildren(deps.length === 0
				? 'independent'
				: h('span', {}, 'uses ', deps.map((id, i) => [i > 0 ? ', ' : '', h('code', {className: ids.has(id) ? '' : 'unknown', title: ids.has(id) ? '' : 'no subtask has this id'}, id)])));
		}
	}

	function addRow({id = '', prompt = ''} = {}) {
		const row = h('div', {className: 'subtask-row'},
			h('input', {className: 'subtask-id', value: id, placeholder: 'id', attrs: {'aria-label': 'Subtask id', spellcheck: 'false'}}),
			h('textarea', {className: 'subtask-prompt', value: prompt, rows: Math.max(2, prompt.split('\n').length), placeholder: 'Prompt; {{id}} inserts the output of subtask id', attrs: {'aria-label': 'Subtask prompt'}}),
			h('span', {className: 'subtask-deps'}),
			h('button', {type: 'button', className: 'icon-button', title: 'Remove this subtask', textContent: '×', onclick() {
				row.remove();
				refreshDependencies();
			}}));
		list.append(row);
		refreshDependencies();
	}

	function reset() {
		list.replaceChildren();
		for (const subtask of exampleSubtasks(config.topic ?? 'the Moon')) {
			addRow(subtask);
		}
	}

	list.addEventListener('input', refreshDependencies);
	$('#subtask-add').addEventListener('click', () => addRow({id: `step${list.children.length + 1}`}));
	$('#subtask-reset').addEventListener('click', reset);
	reset();

	let controller = null;
	stopButton.addEventListener('click', () => controller?.abort(new Error('stopped from the page')));

	// Timeline state: lanes by subtask id, run time zero on the page's clock.
	let lanes;
	let zero;
	let finishedAt;
	let frame = null;

	const now = () => (finishedAt ?? (performance.now() - zero));

	function lane(id) {
		let entry = lanes.get(id);
		if (!entry) {
			const track = h('div', {className: 'lane-track'});
			const time = h('span', {className: 'lane-time'}, 'waiting');
			const element = h('div', {className: 'lane', dataset: {id, status: 'waiting'}},
				h('span', {className: 'lane-label', title: id}, id), track, time);
			entry = {element, track, time, segments: [], startedMs: null, finishedMs: null};
			lanes.set(id, entry);
			timeline.append(element);
		}

		return entry;
	}

	function draw() {
		const total = Math.max(now(), 500);
		for (const entry of lanes.values()) {
			for (const segment of entry.segments) {
				const end = segment.end ?? now();
				segment.element.style.left = `${(segment.start / total) * 100}%`;
				segment.element.style.width = `${Math.max(0.4, ((end - segment.start) / total) * 100)}%`;
			}

			if (entry.startedMs !== null) {
				entry.time.textContent = entry.finishedMs === null
					? `${seconds(entry.startedMs)} → …`
					: `${seconds(entry.startedMs)} → ${seconds(entry.finishedMs)}`;
			}
		}

		const step = niceStep(total / 6);
		const ticks = [];
		for (let t = 0; t <= total; t += step) {
			ticks.push(h('span', {className: 'tick', style: {left: `${(t / total) * 100}%`}}, `${Number((t / 1000).toFixed(2))} s`));
		}

		axis.replaceChildren(...ticks);
	}

	function animate() {
		draw();
		frame = finishedAt === undefined || finishedAt === null ? requestAnimationFrame(animate) : null;
	}

	function closeSegment(entry, at, status) {
		const open = entry.segments.findLast(segment => segment.end === null);
		if (open) {
			open.end = at;
			open.element.className = `segment ${status}`;
		}
	}

	function onEvent(event) {
		if (event.type === 'run-start') {
			zero = performance.now() - event.at;
			return;
		}

		if (event.subtask === undefined || event.subtask === null) {
			return;
		}

		const entry = lane(event.subtask);
		switch (event.type) {
			case 'attempt-start': {
				const element = h('div', {className: 'segment running', title: `attempt ${event.attempt}`});
				entry.segments.push({start: event.at, end: null, element});
				entry.track.append(element);
				entry.startedMs ??= event.at;
				entry.element.dataset.status = 'running';
				break;
			}

			case 'attempt-end': {
				closeSegment(entry, event.at, event.status === 'ok' ? 'ok' : 'failed');
				break;
			}

			case 'subtask-end': {
				closeSegment(entry, event.at, event.status === 'ok' ? 'ok' : 'failed');
				entry.finishedMs = event.finishedMs ?? event.at;
				entry.element.dataset.status = event.status;
				break;
			}

			case 'cancelled': {
				closeSegment(entry, event.at, 'cancelled');
				entry.element.dataset.status = 'cancelled';
				break;
			}

			default: {
				break;
			}
		}
	}

	function renderReport(report) {
		// The report's times replace the live ones; its results list every subtask once.
		finishedAt = report.metrics?.wallMs ?? now();
		for (const result of report.results) {
			const entry = lane(result.id);
			entry.element.dataset.status = result.status;
			entry.startedMs = result.startedMs;
			entry.finishedMs = result.finishedMs;
			entry.track.replaceChildren();
			entry.segments = (result.attempts ?? []).filter(attempt => attempt.startedMs !== null).map(attempt => {
				const element = h('div', {className: `segment ${attempt.status === 'ok' ? 'ok' : (attempt.status === 'cancelled' ? 'cancelled' : 'failed')}`});
				entry.track.append(element);
				return {start: attempt.startedMs, end: attempt.finishedMs ?? finishedAt, element};
			});
			if (result.startedMs === null) {
				entry.time.textContent = result.status;
			}
		}

		draw();

		outputs.replaceChildren(...report.results.map(result => h('details', {className: 'output', open: true, dataset: {id: result.id, status: result.status}},
			h('summary', {}, h('code', {}, result.id), ' ', h('span', {className: `badge status-${result.status}`}, result.status)),
			result.status === 'ok'
				? h('pre', {}, (result.text ?? '').trim())
				: h('p', {className: 'error-text'}, result.error ? `${result.error.code}: ${result.error.message}` : `This subtask was ${result.status}.`))));
		merged.textContent = typeof report.output === 'string' ? report.output.trim() : JSON.stringify(report.output, null, 2);

		if (report.metrics) {
			const m = report.metrics;
			metrics.replaceChildren(facts([
				['Wall', seconds(m.wallMs)],
				['Busy', seconds(m.busyMs)],
				['Parallelism', `${m.parallelism.toFixed(2)} (expected ${Number(m.expectedParallelism).toFixed(2)})`],
				['Critical path', seconds(m.criticalPathMs)],
				['Phases', (m.phases ?? []).map((ids, i) => `${i + 1}: ${ids.join(', ')}`).join(' → ')],
				['Usage', `${usageText(report.usage)} · ${m.requests ?? report.results.length} requests`],
			]));
		}
	}

	form.addEventListener('submit', async event => {
		event.preventDefault();
		if (controller) {
			return;
		}

		message.replaceChildren();
		let options;
		try {
			const subtasks = [...list.children].map(row => ({
				id: row.querySelector('.subtask-id').value.trim(),
				prompt: row.querySelector('.subtask-prompt').value,
			}));
			if (subtasks.length === 0) {
				throw new TypeError('Add at least one subtask');
			}

			options = {
				subtasks,
				merge: merge.value,
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
		lanes = new Map();
		zero = performance.now();
		finishedAt = null;
		timeline.replaceChildren();
		outputs.replaceChildren();
		merged.textContent = '';
		metrics.replaceChildren(h('p', {className: 'muted'}, 'Running…'));
		for (const subtask of options.subtasks) {
			lane(subtask.id);
		}

		runButton.disabled = true;
		stopButton.disabled = false;
		root.dataset.state = 'running';
		frame ??= requestAnimationFrame(animate);
		try {
			const report = await section({...options, signal: controller.signal, onEvent});
			renderReport(report);
			root.dataset.state = 'done';
		} catch (error) {
			finishedAt = now();
			showError(message, error);
			if (error.report?.results) {
				renderReport(error.report);
			} else {
				metrics.replaceChildren();
				draw();
			}

			root.dataset.state = 'error';
		} finally {
			controller = null;
			runButton.disabled = false;
			stopButton.disabled = true;
		}
	});
}
