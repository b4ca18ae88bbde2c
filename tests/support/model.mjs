// The real local model for tests. scripts/test.sh starts one server for the whole
// suite and passes its base URL in LOCAL_MODEL_URL; a test file run on its own
// starts its own server (about half a second), which the exit hook of
// startLocalModel kills when the test process ends.
import {startLocalModel} from '../../scripts/local-model/index.mjs';

let started;

/**
Returns `{ baseURL, model }` for the local model, starting it when no suite-wide
server was given. `slots` only applies to a server started here.
*/
export async function localModel({slots = 2} = {}) {
	if (process.env.LOCAL_MODEL_URL) {
		return {baseURL: process.env.LOCAL_MODEL_URL, model: 'smollm2'};
	}

	if (!started) {
		started = startLocalModel({slots});
	}

	const server = await started;
	return {baseURL: server.baseURL, model: 'smollm2'};
}
