// The package in Node: loaded with import and with require, against the scripted
// server, and against the real local model.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';
import {after, before, beforeEach, test} from 'node:test';
import {complete, openai} from 'parallel-task-executor';
import {localModel} from '../support/model.mjs';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const REQUIRE_SCRIPT = fileURLToPath(new URL('../runtimes/node/require-complete.cjs', import.meta.url));

let server;

before(async () => {
	server = await startScriptedServer();
});

after(async () => {
	await server?.close();
});

beforeEach(() => {
	server.reset();
	server.setDefault(null);
});

/** Runs a Node script and resolves with its exit code, stdout and stderr. */
function runNode(script, env) {
	return new Promise(resolve => {
		execFile(process.execPath, [script], {env: {...process.env, ...env}, timeout: 30_000}, (error, stdout, stderr) => {
			resolve({code: error ? error.code ?? 1 : 0, signal: error?.signal ?? null, stdout, stderr});
		});
	});
}

test('import resolves the Node entry', () => {
	const require = createRequire(import.meta.url);
	assert.match(require.resolve('parallel-task-executor'), /[/\\]pkg[/\\]node\.js$/);
	assert.equal(import.meta.resolve('parallel-task-executor').endsWith('/pkg/node.js'), true);
});

test('import runs complete against the scripted server', async () => {
	server.setDefault(openaiOk('Hello from import'));
	const provider = openai({baseURL: `${server.url}/v1`, model: 'scripted'});

	const result = await complete({provider, prompt: 'Say hi from import'});

	assert.equal(result.text, 'Hello from import');
	assert.equal(result.finishReason, 'stop');
	assert.equal(result.usage.inputTokens, 9);
	assert.equal(server.requests().length, 1);
	assert.deepEqual(server.requests()[0].body.messages, [{role: 'user', content: 'Say hi from import'}]);
});

test('require runs complete in a child process', async t => {
	server.setDefault(openaiOk('Hello from require'));

	const run = await runNode(REQUIRE_SCRIPT, {API_BASE: `${server.url}/v1`});

	assert.equal(run.signal, null, `the child was killed by ${run.signal}`);
	assert.equal(run.code, 0, `the child exited with ${run.code}: ${run.stderr}`);
	const result = JSON.parse(run.stdout);
	assert.equal(result.text, 'Hello from require');
	assert.equal(result.usage.inputTokens, 9);
	assert.deepEqual(server.requests()[0].body.messages, [{role: 'user', content: 'Say hi from require'}]);

	// Node prints an ExperimentalWarning for require(esm) on some 20.x and 22.x
	// releases; anything else on stderr is a failure.
	const experimental = run.stderr.includes('ExperimentalWarning');
	t.diagnostic(`require(esm) on Node ${process.version}: ${experimental ? 'ExperimentalWarning printed' : 'no ExperimentalWarning'}`);
	const otherOutput = run.stderr
		.split('\n')
		.filter(line => line.trim() !== '' && !line.includes('ExperimentalWarning') && !line.includes('--trace-warnings'));
	assert.deepEqual(otherOutput, []);
});

test('complete against the local model returns text and usage', async () => {
	const {baseURL, model} = await localModel();
	const provider = openai({baseURL, model, maxTokens: 16, temperature: 0});

	const result = await complete({provider, prompt: 'Say hello in one word.', timeoutMs: 30_000});

	assert.equal(typeof result.text, 'string');
	assert.ok(result.text.trim().length > 0, 'the model returned empty text');
	assert.ok(result.usage.inputTokens > 0, `inputTokens is ${result.usage.inputTokens}`);
	assert.ok(result.usage.outputTokens > 0, `outputTokens is ${result.usage.outputTokens}`);
	assert.ok(result.usage.outputTokens <= 16);
	assert.ok(['stop', 'length'].includes(result.finishReason), `finishReason is ${result.finishReason}`);
});
