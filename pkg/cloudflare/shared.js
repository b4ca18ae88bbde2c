// Plain-data forms of errors and outcomes, and small helpers shared by the Workflow
// and the Queues paths.

const ERROR_FIELDS = ['status', 'retryable', 'providerType', 'providerMessage', 'bodyExcerpt', 'retryAfterMs', 'path', 'limit', 'needed'];

/** Converts an Error into plain data that survives a step result, an RPC or storage. */
export function errorData(error) {
	const data = {
		code: typeof error?.code === 'string' ? error.code : 'PROVIDER_ERROR',
		message: String(error?.message ?? error),
		name: typeof error?.name === 'string' ? error.name : 'Error',
	};
	for (const key of ERROR_FIELDS) {
		if (error?.[key] !== undefined && error[key] !== null) {
			data[key] = error[key];
		}
	}

	return data;
}

const ERROR_CLASSES = {TypeError, RangeError};

/** Rebuilds an Error like the ones the package rejects with, its partial result in `report`. */
export function toError(data, report) {
	const {name, message, ...fields} = data;
	const error = new (ERROR_CLASSES[name] ?? Error)(message);
	Object.assign(error, fields);
	if (data.code === 'ABORTED') {
		error.name = 'AbortError';
	}

	if (report !== undefined && report !== null) {
		error.report = report;
	}

	return error;
}

export function failedOutcome(error, label) {
	const {name: _name, ...data} = errorData(error);
	return {status: 'failed', text: null, finishReason: null, model: null, usage: null, error: data, attempts: [], ...label};
}

export function isRetryable(outcome) {
	return outcome.status === 'failed' && outcome.error?.retryable === true;
}

export function byteLength(value) {
	return new TextEncoder().encode(JSON.stringify(value)).byteLength;
}

export function sleep(ms) {
	return ms > 0 ? new Promise(resolve => {
		setTimeout(resolve, ms);
	}) : Promise.resolve();
}

/**
Narrows section options to one subtask and stand-ins for its dependencies. runSubtask
decodes every option it is given, so with the whole list each call would cost time in
proportion to the job's size. The stand-ins keep the `{{id}}` placeholders valid, and
their prompts are never sent.
*/
export function narrowSection(options, subtasksById, id, dependsOn) {
	const subtask = subtasksById.get(id);
	const stubs = dependsOn.map(dep => ({id: dep, prompt: '-', provider: subtasksById.get(dep)?.provider}));
	return {...options, subtasks: [...stubs, subtask], merge: 'ordered', failure: 'settle', maxRetries: 0};
}

export function subtaskMap(options) {
	return new Map((Array.isArray(options?.subtasks) ? options.subtasks : []).map(subtask => [subtask?.id, subtask]));
}

/** Creates a counting semaphore: the returned function runs at most `size` tasks at once. */
export function createGate(size) {
	let active = 0;
	const waiting = [];
	return async task => {
		if (active < size) {
			active++;
		} else {
			// A finishing task hands its slot straight to the first waiter.
			await new Promise(resolve => {
				waiting.push(resolve);
			});
		}

		try {
			return await task();
		} finally {
			const next = waiting.shift();
			if (next) {
				next();
			} else {
				active--;
			}
		}
	};
}

/** Fills in the rounds of a vote that finishVote cannot know: `[{round, samples}]`. */
export function withRounds(result, rounds) {
	return {...result, rounds: rounds.length, roundDetails: rounds};
}

/** Resolves to the outcome of a call, or to a failed outcome when the call rejects. */
export function settleCall(promise, label) {
	return promise.then(outcome => outcome, error => failedOutcome(error, label));
}
