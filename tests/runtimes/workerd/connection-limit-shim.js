// A fetch wrapper that applies the strict form of the Workers connection rule: at
// most 6 responses may be outstanding (started, body not fully read). A new fetch
// past that cancels the oldest outstanding response that is idle (no body read in
// progress), failing it with "Response closed due to connection limit", which is
// how the runtime breaks a worker that waits for every header before reading any
// body. When none is idle, the new fetch waits for a slot.

export const CONNECTION_LIMIT = 6;
export const CONNECTION_LIMIT_MESSAGE = 'Response closed due to connection limit';

/** Returns `{ fetch, stats }`. `stats()` reports the cancellations and the max outstanding at once. */
export function createConnectionLimitedFetch(baseFetch = globalThis.fetch) {
	const outstanding = [];
	const waiting = [];
	let cancelled = 0;
	let maxOutstanding = 0;

	const release = entry => {
		const index = outstanding.indexOf(entry);
		if (index === -1) {
			return;
		}

		outstanding.splice(index, 1);
		waiting.shift()?.();
	};

	const cancel = entry => {
		cancelled += 1;
		const error = new Error(CONNECTION_LIMIT_MESSAGE);
		entry.fail(error);
		entry.controller.abort(error);
		release(entry);
	};

	async function limitedFetch(input, init = {}) {
		// The slot is taken before the first await, so fetches started in one turn
		// see each other.
		while (outstanding.length >= CONNECTION_LIMIT) {
			const idle = outstanding.find(entry => !entry.reading);
			if (idle) {
				cancel(idle);
			} else {
				// eslint-disable-next-line no-await-in-loop
				await new Promise(resolve => {
					waiting.push(resolve);
				});
			}
		}

		const controller = new AbortController();
		const entry = {controller, reading: false, failed: null, fail: null};
		outstanding.push(entry);
		maxOutstanding = Math.max(maxOutstanding, outstanding.length);

		// The caller's signal still aborts the request.
		const onAbort = () => controller.abort(init.signal.reason);
		init.signal?.addEventListener('abort', onAbort, {once: true});

		const failure = new Promise((_resolve, reject) => {
			entry.fail = error => {
				entry.failed = error;
				reject(error);
			};
		});
		failure.catch(() => {});

		let response;
		try {
			response = await Promise.race([baseFetch(input, {...init, signal: controller.signal}), failure]);
		} catch (error) {
			release(entry);
			init.signal?.removeEventListener('abort', onAbort);
			throw error;
		}

		const reader = response.body.getReader();
		const body = new ReadableStream({
			async pull(streamController) {
				if (entry.failed) {
					streamController.error(entry.failed);
					return;
				}

				entry.reading = true;
				try {
					const {done, value} = await Promise.race([reader.read(), failure]);
					if (done) {
						release(entry);
						init.signal?.removeEventListener('abort', onAbort);
						streamController.close();
					} else {
						streamController.enqueue(value);
					}
				} catch (error) {
					release(entry);
					streamController.error(error);
				} finally {
					entry.reading = false;
				}
			},
			cancel(reason) {
				release(entry);
				return reader.cancel(reason);
			},
		});
		return new Response(body, {status: response.status, statusText: response.statusText, headers: response.headers});
	}

	return {
		fetch: limitedFetch,
		stats: () => ({cancelled, maxOutstanding, outstanding: outstanding.length}),
	};
}
