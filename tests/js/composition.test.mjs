// Runs nest: a subtask decided by a vote inside a custom provider, sharing the outer
// limiter, receiving the outer signal, and adding its usage to the outer run.
import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {createLimiter, custom, openai, section, vote} from 'parallel-task-executor';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

let server;
const unhandled = [];
const onUnhandled = reason => unhandled.push(reason);

before(async () => {
	process.on('unhandledRejection', onUnhandled);
	server = await startScriptedServer();
});

after(async () => {
	process.off('unhandledRejection', onUnhandled);
	await server.close();
});

// A provider whose every call is a 3-voter vote on the given model.
function votingProvider(model, limiter) {
	return custom(async (request, {signal}) => {
		const result = await vote({
			provider: model,
			messages: request.messages,
			voters: 3,
			extract: 'number',
			signal,
			limiter,
		});
		return {text: result.winner ?? '', usage: result.usage};
	}, {name: 'vote-of-3'});
}

test('a subtask decided by a nested vote', async () => {
	server.reset();
	server.setDefault(record => {
		const prompt = record.body.messages.at(-1).content;
		return openaiOk(prompt.includes('2+2') ? 'It is 4.' : `Summary: ${prompt.length}`, {delayMs: 20});
	});
	const model = openai({baseURL: `${server.url}/v1`, model: 'm'});
	const limiter = createLimiter(4);
	const report = await section({
		provider: model,
		limiter,
		subtasks: [
			{id: 'sum', prompt: 'What is 2+2?', provider: votingProvider(model, limiter)},
			{id: 'text', prompt: 'Say it in words: {{sum}}'},
		],
	});
	assert.equal(report.results[0].text, '4');
	assert.equal(report.results[1].status, 'ok');
	assert.match(server.requests().at(-1).body.messages[0].content, /Say it in words: 4/);
	assert.equal(server.requests().length, 4, 'three votes and one dependent call');
	assert.ok(server.stats().maxInFlight <= 4);
	// Plurality settles once two voters agree, so the inner vote used two or three calls.
	assert.ok(report.results[0].usage.inputTokens >= 2 * 9, 'the nested usage is the subtask usage');
	assert.equal(report.usage.inputTokens, report.results[0].usage.inputTokens + report.results[1].usage.inputTokens);
	server.setDefault(null);
});

test('an outer abort stops the inner run and closes its requests', async () => {
	server.reset();
	server.setDefault({stall: 'before-headers'});
	const model = openai({baseURL: `${server.url}/v1`, model: 'm'});
	const controller = new AbortController();
	const running = section({
		provider: model,
		subtasks: [{id: 'sum', prompt: 'What is 2+2?', provider: votingProvider(model)}],
		signal: controller.signal,
	});
	await server.waitFor(s => s.stats().inFlight === 3);
	const abortedAt = server.now();
	controller.abort(new Error('user left'));
	await assert.rejects(running, error => {
		assert.equal(error.code, 'ABORTED');
		assert.equal(error.name, 'AbortError');
		assert.equal(error.cause.message, 'user left');
		assert.equal(error.report.results[0].status, 'cancelled');
		return true;
	});
	await server.waitFor(s => s.requests().every(record => record.clientClosedAt !== null), {timeoutMs: 2000});
	for (const record of server.requests()) {
		assert.ok(record.clientClosedAt - abortedAt < 200, `request ${record.seq} closed ${record.clientClosedAt - abortedAt} ms after the abort`);
	}

	await new Promise(resolve => {
		setTimeout(resolve, 50);
	});
	assert.deepEqual(unhandled, []);
	server.setDefault(null);
});
