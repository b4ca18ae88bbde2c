// Text rendering for the terminal: vote tallies as bars, sectioning timelines on
// a shared time axis, and number formats. Every function returns lines and
// writes nothing.

const FULL_BLOCK = '█';
// Left-aligned partial blocks, from one eighth to seven eighths of a cell.
const PARTIAL_BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const FAILED_BLOCK = '░';

export function seconds(ms) {
	if (ms === null || ms === undefined) {
		return '-';
	}

	return `${(ms / 1000).toFixed(2)} s`;
}

export function percent(ratio) {
	return ratio === null || ratio === undefined ? '-' : `${Math.round(ratio * 100)}%`;
}

/** Shortens text to `width` characters on one line, ending in an ellipsis when cut. */
export function clip(text, width) {
	const line = String(text).replace(/\s+/g, ' ').trim();
	return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

/** Wraps text at `width` columns and indents every line by `indent` spaces. */
export function wrapText(text, width, indent = 0) {
	const pad = ' '.repeat(indent);
	const lines = [];
	for (const paragraph of String(text).trim().split(/\n+/)) {
		let line = '';
		for (const word of paragraph.split(/\s+/).filter(Boolean)) {
			if (line && line.length + 1 + word.length > width - indent) {
				lines.push(pad + line);
				line = word;
			} else {
				line = line ? `${line} ${word}` : word;
			}
		}

		lines.push(pad + line);
	}

	return lines;
}

/** Draws a bar `cells` wide, rounded to eighths of a character cell. */
export function bar(cells) {
	const eighths = Math.max(0, Math.round(cells * 8));
	return FULL_BLOCK.repeat(Math.floor(eighths / 8)) + PARTIAL_BLOCKS[eighths % 8];
}

/**
Renders a vote tally, one line per answer: the answer, a bar proportional to its
votes (the leader fills `width` cells), and the vote count. The winner is marked.
*/
export function tallyLines(tally, {winner = null, width = 32, labelWidth = 16} = {}) {
	if (tally.length === 0) {
		return ['  (no answer was counted)'];
	}

	const top = Math.max(...tally.map(entry => entry.votes));
	const labels = tally.map(entry => clip(entry.answer, labelWidth));
	const column = Math.max(...labels.map(label => label.length));
	return tally.map((entry, i) => {
		const cells = top > 0 ? (entry.votes / top) * width : 0;
		const mark = entry.answer === winner ? '  ← winner' : '';
		const votes = Number.isInteger(entry.votes) ? String(entry.votes) : entry.votes.toFixed(2);
		return `  ${labels[i].padEnd(column)}  ${bar(Math.max(cells, 1 / 8))} ${votes}${mark}`;
	});
}

function niceStep(rawStep) {
	const power = 10 ** Math.floor(Math.log10(rawStep));
	for (const factor of [1, 2, 2.5, 5, 10]) {
		if (factor * power >= rawStep) {
			return factor * power;
		}
	}

	return 10 * power;
}

/**
Renders a timeline of sectioning results: one row per subtask with a bar for each
attempt over a shared time axis from 0 to the run's wall time, then the axis.
Failed or cancelled attempts are drawn in a light shade. `width` is the total
line width in characters.
*/
export function timelineLines(results, wallMs, {width = 80} = {}) {
	const labels = results.map(result => clip(result.id, 14));
	const labelColumn = Math.max(4, ...labels.map(label => label.length));
	const timeColumn = 16;
	const cells = Math.max(10, width - labelColumn - timeColumn - 6);
	const span = Math.max(wallMs, 1);
	const msPerCell = span / cells;
	const lines = [];

	for (const [index, result] of results.entries()) {
		const row = Array.from({length: cells}, () => ' ');
		for (const attempt of result.attempts ?? []) {
			if (attempt.startedMs === null || attempt.finishedMs === null) {
				continue;
			}

			const start = Math.min(cells - 1, Math.floor(attempt.startedMs / msPerCell));
			const end = Math.min(cells, Math.max(start + 1 / 8, attempt.finishedMs / msPerCell));
			const block = attempt.status === 'ok' ? FULL_BLOCK : FAILED_BLOCK;
			// The end in eighths of a cell: whole cells, then one partial block.
			const eighths = Math.round(end * 8);
			const whole = Math.floor(eighths / 8);
			for (let cell = start; cell < whole; cell++) {
				row[cell] = block;
			}

			const rest = eighths % 8;
			if (whole < cells && rest > 0 && row[whole] === ' ') {
				row[whole] = block === FULL_BLOCK ? PARTIAL_BLOCKS[rest] : FAILED_BLOCK;
			}
		}

		const times = result.startedMs === null || result.startedMs === undefined
			? result.status
			: `${(result.startedMs / 1000).toFixed(2)}–${seconds(result.finishedMs)}`;
		lines.push(`  ${labels[index].padEnd(labelColumn)} │${row.join('')}│ ${times}`);
	}

	// The axis under the cells: tick marks at round times, labels under them where they fit.
	const step = niceStep(span / Math.max(1, Math.floor(cells / 12)));
	const ticks = Array.from({length: cells}, () => '─');
	const labelsRow = Array.from({length: cells + 12}, () => ' ');
	for (let t = 0; t <= span + 1e-9; t += step) {
		const cell = Math.min(cells - 1, Math.round(t / msPerCell));
		ticks[cell] = '┴';
		const text = `${Number((t / 1000).toFixed(3))}s`;
		const at = Math.max(0, cell - Math.floor(text.length / 2));
		if (labelsRow.slice(Math.max(0, at - 1), at + text.length + 1).every(character => character === ' ')) {
			labelsRow.splice(at, text.length, ...text);
		}
	}

	const pad = ' '.repeat(labelColumn + 4);
	lines.push(`${pad}${ticks.join('')}`, `${pad}${labelsRow.join('').trimEnd()}`);
	return lines;
}

/** Formats a usage object as one phrase. */
export function usageText(usage) {
	if (!usage) {
		return 'not reported';
	}

	const cost = usage.costUsd === null || usage.costUsd === undefined ? '' : `, $${usage.costUsd.toFixed(4)}`;
	return `${usage.inputTokens} input + ${usage.outputTokens} output tokens${cost}`;
}
