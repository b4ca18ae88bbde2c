// Summary statistics for repeated measurements: the median to quote and the
// spread (minimum and maximum) that shows how noisy the runs were.

/** Returns the median of a non-empty list of numbers. */
export function median(values) {
	if (values.length === 0) {
		throw new RangeError('median: no values');
	}

	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Returns `{median, min, max, n}` of a list of numbers. */
export function summarize(values) {
	return {
		median: median(values),
		min: Math.min(...values),
		max: Math.max(...values),
		n: values.length,
	};
}

/**
Returns the ratio a/b pair by pair (run i of a against run i of b), summarized.
Pairing cancels drift of the machine's speed between rounds.
*/
export function pairedRatio(a, b) {
	const count = Math.min(a.length, b.length);
	const ratios = [];
	for (let i = 0; i < count; i++) {
		ratios.push(a[i] / b[i]);
	}

	return summarize(ratios);
}

/** Formats a number with a fixed count of significant digits, without exponent for ordinary sizes. */
export function fmt(value, digits = 3) {
	if (value === null || value === undefined || Number.isNaN(value)) {
		return 'n/a';
	}

	if (value === 0) {
		return '0';
	}

	const magnitude = Math.floor(Math.log10(Math.abs(value)));
	if (magnitude >= digits) {
		return Math.round(value).toLocaleString('en-US');
	}

	if (magnitude < -4) {
		return value.toExponential(digits - 1);
	}

	return Number(value.toPrecision(digits)).toString();
}

/** Formats a summary as "median (min–max)". */
export function fmtSpread(summary, digits = 3, unit = '') {
	if (!summary) {
		return 'n/a';
	}

	if (summary.n === 1 || summary.min === summary.max) {
		return `${fmt(summary.median, digits)}${unit}`;
	}

	return `${fmt(summary.median, digits)}${unit} (${fmt(summary.min, digits)}–${fmt(summary.max, digits)})`;
}
