// Small DOM and formatting helpers shared by the demo's views.

/**
Creates an element. `props` sets properties (className, textContent, hidden, …),
except `dataset`, `style` and `attrs`, which are merged in. Children may be
strings, nodes, null or arrays of them.
*/
export function h(tag, props = {}, ...children) {
	const element = document.createElement(tag);
	const {dataset, style, attrs, ...rest} = props;
	Object.assign(element, rest);
	if (dataset) {
		Object.assign(element.dataset, dataset);
	}

	if (style) {
		Object.assign(element.style, style);
	}

	for (const [name, value] of Object.entries(attrs ?? {})) {
		element.setAttribute(name, value);
	}

	for (const child of children.flat(Infinity)) {
		if (child !== null && child !== undefined && child !== false) {
			element.append(child);
		}
	}

	return element;
}

export function $(selector, root = document) {
	const element = root.querySelector(selector);
	if (!element) {
		throw new Error(`missing element ${selector}`);
	}

	return element;
}

export function seconds(ms) {
	return ms === null || ms === undefined ? '–' : `${(ms / 1000).toFixed(2)} s`;
}

export function percent(ratio) {
	return ratio === null || ratio === undefined ? '–' : `${Math.round(ratio * 100)}%`;
}

export function numberInput(element, {min = -Infinity, max = Infinity, integer = false, name}) {
	const value = Number(element.value);
	if (element.value.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
		const kind = integer ? 'an integer' : 'a number';
		throw new RangeError(`${name} must be ${kind} from ${min} to ${max}, got "${element.value}"`);
	}

	return value;
}

/** Shows an error (with its code when the package gave one) in a container. */
export function showError(container, error) {
	const code = error?.code ? `${error.code}: ` : '';
	container.replaceChildren(h('div', {className: 'error', attrs: {role: 'alert'}}, `${code}${error?.message ?? String(error)}`));
}

export function usageText(usage) {
	if (!usage) {
		return 'not reported';
	}

	return `${usage.inputTokens} in + ${usage.outputTokens} out tokens`;
}

/** Builds a definition list from [term, value, data attributes?] rows. */
export function facts(rows) {
	return h('dl', {className: 'facts'}, rows.map(([term, value, dataset]) => [
		h('dt', {}, term),
		h('dd', {dataset: dataset ?? {}}, value),
	]));
}
