// A call to a port where nothing listens rejects with a PROVIDER_ERROR whose message
// states why the connection failed (ECONNREFUSED, from the cause Node's fetch attaches
// to its "TypeError: fetch failed").

import assert from 'node:assert/strict';
import net from 'node:net';
import {test} from 'node:test';
import {complete, openai} from 'parallel-task-executor';

/** Returns a 127.0.0.1 port that was free a moment ago and has no listener now. */
async function closedPort() {
	const server = net.createServer();
	await new Promise(resolve => {
		server.listen(0, '127.0.0.1', resolve);
	});
	const {port} = server.address();
	await new Promise(resolve => {
		server.close(resolve);
	});
	return port;
}

test('refused connection names its cause', async () => {
	const port = await closedPort();
	const provider = openai({baseURL: `http://127.0.0.1:${port}/v1`, model: 'm'});

	const error = await complete({provider, prompt: 'hi', maxRetries: 0}).then(
		() => assert.fail('the call should reject'),
		caught => caught,
	);

	assert.equal(error.code, 'PROVIDER_ERROR');
	assert.equal(error.providerType, 'network');
	assert.match(error.message, /ECONNREFUSED/, error.message);
});
