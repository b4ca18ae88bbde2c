// The main job never prints a credential it receives in a base URL. A base URL with
// user:password@, from PTE_BASE_URL or --base-url, is a usage error (exit 2) whose message
// leaves the password out, and no request is made. A base URL with a query string is
// printed with every query value replaced by ***.

import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {test} from 'node:test';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const mainScript = path.join(repoRoot, 'examples', 'main.mjs');

function runMain(args, extraEnv = {}) {
	const env = {...process.env};
	for (const name of Object.keys(env)) {
		if (name.startsWith('PTE_') || name.endsWith('_API_KEY')) {
			delete env[name];
		}
	}

	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [mainScript, ...args], {cwd: repoRoot, env: {...env, ...extraEnv}, stdio: ['ignore', 'pipe', 'pipe']});
		let stdout = '';
		let stderr = '';
		const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
		child.stdout.on('data', chunk => {
			stdout += chunk;
		});
		child.stderr.on('data', chunk => {
			stderr += chunk;
		});
		child.once('error', reject);
		child.once('close', code => {
			clearTimeout(timer);
			resolve({code, stdout, stderr});
		});
	});
}

test('main job hides password in PTE_BASE_URL', async () => {
	const server = await startScriptedServer();
	const password = 'sk-url-password-0123456789';
	try {
		const baseUrl = `http://user:${password}@${server.url.replace('http://', '')}/v1`;
		const {code, stdout, stderr} = await runMain(['--model', 'm', '--only', 'vote', '--voters', '1'], {PTE_BASE_URL: baseUrl});
		assert.ok(!stdout.includes(password), `the password appears on stdout:\n${stdout}`);
		assert.ok(!stderr.includes(password), `the password appears on stderr:\n${stderr}`);
		assert.equal(code, 2, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
		assert.match(stderr, /^error: PTE_BASE_URL must not contain a user name or password\b/m);
		assert.equal(server.requests().length, 0);
	} finally {
		await server.close();
	}
});

test('main job rejects credentials in --base-url', async () => {
	const password = 'sk-flag-password-0123456789';
	for (const baseUrl of [`http://user:${password}@127.0.0.1:9/v1`, `https://${password}@127.0.0.1:9/v1`, `not a url ${password}@127.0.0.1`]) {
		// eslint-disable-next-line no-await-in-loop
		const {code, stdout, stderr} = await runMain(['--base-url', baseUrl, '--model', 'm']);
		assert.equal(code, 2, `${baseUrl}: exit ${code}\nstderr:\n${stderr}`);
		assert.match(stderr, /^error: --base-url /m);
		assert.ok(!stdout.includes(password), `the password appears on stdout:\n${stdout}`);
		assert.ok(!stderr.includes(password), `the password appears on stderr:\n${stderr}`);
	}
});

test('main job hides query values of the base URL', async () => {
	const server = await startScriptedServer();
	server.setDefault(openaiOk('4'));
	const secret = 'sig-0123456789abcdef';
	try {
		const {stdout, stderr} = await runMain(['--base-url', `${server.url}/v1?api-key=${secret}&region=eu`, '--model', 'm', '--only', 'vote', '--voters', '1', '--rule', 'plurality', '--timeout-ms', '5000']);
		assert.match(stdout, /^Endpoint: openai model m at http:\/\/127\.0\.0\.1:\d+\/v1\?api-key=\*\*\*&region=\*\*\*, no key/m, stdout);
		assert.ok(!stdout.includes(secret), `the query value appears on stdout:\n${stdout}`);
		assert.ok(!stderr.includes(secret), `the query value appears on stderr:\n${stderr}`);
	} finally {
		await server.close();
	}
});
