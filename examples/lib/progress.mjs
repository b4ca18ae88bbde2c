// Progress of a running vote or sectioning job, from the package's onEvent
// events. On a TTY one status line is redrawn in place. Elsewhere each finished
// call is printed as a plain line, so logs and pipes stay readable.

import {clip, seconds} from './render.mjs';

function callKey(event) {
	if (event.sample !== undefined && event.sample !== null) {
		return `sample ${event.sample}`;
	}

	if (event.subtask !== undefined && event.subtask !== null) {
		return `subtask ${event.subtask}`;
	}

	return `call ${event.call ?? '?'} ${event.candidate ?? ''}`;
}

/** Names a call in a printed line: `sample #3`, `subtask origin`. */
function callLabel(event) {
	return callKey(event).replace(/^sample /, 'sample #');
}

/**
Returns `{ onEvent, finish }` for one run. `onEvent` takes the package's events;
`finish()` clears the status line. `total` is the number of calls planned;
the count grows when a run starts more (a vote that tops up).
*/
export function createProgress({stream = process.stdout, title, total}) {
	const live = Boolean(stream.isTTY);
	const inFlight = new Set();
	const started = new Set();
	// A cancelled call may end with several events (subtask-end or sample with status
	// "cancelled", then cancelled), in either order. It gets one line, from the first.
	const cancelledCalls = new Set();
	let done = 0;
	let cancelled = 0;
	let retries = 0;
	let note = '';

	const status = () => {
		const parts = [`${title}: ${done}/${Math.max(total, started.size)} done`, `${inFlight.size} in flight`];
		if (cancelled > 0) {
			parts.push(`${cancelled} cancelled`);
		}

		if (retries > 0) {
			parts.push(`${retries} retried`);
		}

		if (note) {
			parts.push(note);
		}

		return parts.join(' · ');
	};

	const redraw = () => {
		if (live) {
			const width = (stream.columns || 80) - 1;
			stream.write(`\r\u001B[2K${clip(status(), width)}`);
		}
	};

	const line = text => {
		if (!live) {
			stream.write(`  ${text}\n`);
		}
	};

	const markCancelled = (event, text) => {
		const key = callKey(event);
		inFlight.delete(key);
		if (cancelledCalls.has(key)) {
			return;
		}

		cancelledCalls.add(key);
		cancelled++;
		line(text);
	};

	const onEvent = event => {
		if ((event.type === 'sample' || event.type === 'subtask-end') && event.status === 'cancelled') {
			const timed = event.type === 'subtask-end' && typeof event.startedMs === 'number' && typeof event.finishedMs === 'number';
			const took = timed ? ` in ${seconds(event.finishedMs - event.startedMs)}` : '';
			markCancelled(event, `${callLabel(event)} cancelled${took}`);
			redraw();
			return;
		}

		switch (event.type) {
			case 'attempt-start': {
				inFlight.add(callKey(event));
				started.add(callKey(event));
				break;
			}

			case 'attempt-end': {
				inFlight.delete(callKey(event));
				break;
			}

			case 'retry': {
				retries++;
				line(`${callKey(event)}: retry in ${seconds(event.delayMs)} (${event.reason ?? 'error'})`);
				break;
			}

			case 'rate-limited': {
				line(`rate limited: waiting ${seconds(event.waitMs)}`);
				break;
			}

			case 'sample': {
				done++;
				inFlight.delete(callKey(event));
				const answer = event.answer ?? event.reason ?? event.error?.code ?? 'no answer';
				line(`sample #${event.sample} ${event.status}: ${clip(answer, 40)}`);
				break;
			}

			case 'subtask-end': {
				done++;
				inFlight.delete(callKey(event));
				const took = event.startedMs === null ? '' : ` in ${seconds(event.finishedMs - event.startedMs)}`;
				line(`subtask ${event.subtask} ${event.status}${took}`);
				break;
			}

			case 'decided': {
				note = `decided after ${event.afterSamples}`;
				line(`decided after ${event.afterSamples} samples: ${event.winner ?? 'no winner'}`);
				break;
			}

			case 'cancelled': {
				markCancelled(event, `${callLabel(event)} cancelled`);
				break;
			}

			case 'warning': {
				line(`warning: ${event.message}`);
				break;
			}

			default: {
				break;
			}
		}

		redraw();
	};

	const finish = () => {
		if (live) {
			stream.write('\r\u001B[2K');
		}
	};

	return {onEvent, finish};
}
