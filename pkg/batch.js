// Provider batch APIs (OpenAI Batch, Anthropic Message Batches) as a mode of
// `section` and `vote`: `batch: true` sends the requests as batches at half price
// and resolves with the same report, with the batch handle in `report.batch`.
// This file adds what the batch mode needs besides those two calls: resuming a
// run from its handle, and the providers' limits.
import * as wasm from './wasm/parallel_task_executor.js';
import {section, vote} from './core.js';

function invalid(message, path) {
	const error = new TypeError(message);
	error.code = 'INVALID_OPTIONS';
	error.path = path;
	return error;
}

// Builds an Error from the plain object the core throws for a bad handle.
function handleError(raw) {
	if (raw instanceof Error) {
		return raw;
	}

	const {message, class: className, ...fields} = raw ?? {};
	const ErrorClass = className === 'RangeError' ? RangeError : TypeError;
	const error = new ErrorClass(String(message ?? raw));
	Object.assign(error, fields);
	return error;
}

/**
Resumes a batch run from its handle (`report.batch`, `err.report.batch` or the `handle` of a `batch-submitted` event), for example after a restart. It polls the batches that the handle lists and submits the requests they do not contain. It resolves with the same report as the first call would have. Pass the options of the first call.
*/
export async function resumeBatch(handle, options) {
	if (handle === null || typeof handle !== 'object' || Array.isArray(handle)) {
		throw invalid(`resumeBatch(handle): expected the batch handle object from report.batch, err.report.batch or a batch-submitted event, got ${handle === null ? 'null' : typeof handle}`, 'handle');
	}

	if (options === null || typeof options !== 'object') {
		throw invalid('resumeBatch(handle, options): options are required; pass the options of the call that submitted the batches', 'options');
	}

	let kind;
	try {
		kind = wasm.checkBatchHandle(JSON.stringify(handle));
	} catch (error) {
		throw handleError(error);
	}

	// A handle from one kind of run with the other kind's options would only fail
	// later on an unknown option, which hides the real mistake.
	const optionsKind = 'subtasks' in options ? 'section' : ('voters' in options ? 'vote' : null);
	if (optionsKind !== null && optionsKind !== kind) {
		const shape = optionsKind === 'section' ? 'they have subtasks' : 'they have voters and no subtasks';
		throw invalid(`resumeBatch(handle, options): the handle is from a ${kind} run, but the options are a ${optionsKind}'s (${shape}); pass the options of the ${kind} call that submitted the batches`, 'options');
	}

	const {batch} = options;
	if (batch === false) {
		throw invalid('batch: is false, but resumeBatch resumes a batch run; leave batch unset, or pass true or an object', 'batch');
	}

	const settings = batch === undefined || batch === null || batch === true ? {} : batch;
	const run = kind === 'vote' ? vote : section;
	return run({...options, batch: {...settings, resume: handle}});
}

/** Returns the maximum requests and bytes of one batch: `{openai: {maxRequests, maxBytes}, anthropic: {...}}`. */
export function batchLimits() {
	return JSON.parse(wasm.batchLimits());
}
