// The package in headless Chromium: a page that imports the browser entry as a plain
// ES module, and a Vite build of an app that imports the package by name. Both call
// the scripted provider server on another port, so every request is cross-origin.
import assert from 'node:assert/strict';
import {mkdtempSync, readdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {after, before, beforeEach, test} from 'node:test';
import {build} from 'vite';
import {launchChromium} from '../support/chromium.mjs';
import {openaiOk, startScriptedServer} from '../support/scripted-server.mjs';

const PAGE_DIR = fileURLToPath(new URL('../runtimes/browser/', import.meta.url));
const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const VITE_CONFIG = fileURLToPath(new URL('../runtimes/vite-app/vite.config.mjs', import.meta.url));
const PAGE_TIMEOUT_MS = 20_000;

let api;
let browser;

before(async () => {
	api = await startScriptedServer();
	browser = await launchChromium();
});

after(async () => {
	await browser?.close();
	await api?.close();
});

beforeEach(() => {
	api.reset();
	api.setDefault(null);
	browser.errors.length = 0;
	browser.warnings.length = 0;
	browser.responses.length = 0;
});

/** Asserts that the page fetched the wasm module as application/wasm. */
function assertWasmServed() {
	const wasm = browser.responses.filter(response => new URL(response.url).pathname.endsWith('.wasm'));
	assert.equal(wasm.length, 1, JSON.stringify(browser.responses));
	assert.equal(wasm[0].status, 200);
	assert.equal(wasm[0].contentType, 'application/wasm');
}

/** Opens a page, waits until it sets its title to DONE or FAIL, and returns the JSON in #result. */
async function runPage(url) {
	const {page} = browser;
	await page.goto(url);
	await page.waitForFunction(() => document.title === 'DONE' || document.title === 'FAIL', undefined, {timeout: PAGE_TIMEOUT_MS});
	const title = await page.title();
	const output = JSON.parse(await page.locator('#result').textContent());
	assert.equal(title, 'DONE', `the page failed: ${JSON.stringify(output.error)}`);
	return output;
}

test('plain page runs complete and aggregate', async t => {
	const site = await startScriptedServer({staticRoot: PAGE_DIR, staticRoutes: {'/pkg': PKG_DIR}});
	t.after(() => site.close());
	api.setDefault(openaiOk('Hello from the scripted server'));
	assert.notEqual(site.port, api.port);

	const output = await runPage(`${site.url}/index.html?api=${encodeURIComponent(`${api.url}/v1`)}`);

	assert.equal(output.complete.text, 'Hello from the scripted server');
	assert.equal(output.complete.usage.inputTokens, 9);
	assert.equal(output.aggregate.winner, '42');
	assert.equal(output.aggregate.counts['42'], 3);
	assert.equal(output.aggregate.usage, null);

	// The request crossed origins: the browser sent the page's origin.
	const [record] = api.requests();
	assert.equal(api.requests().length, 1);
	assert.equal(record.headers.origin, site.url);
	assert.equal(record.headers.authorization, 'Bearer sk-browser-test-key');
	assert.deepEqual(record.body.messages, [{role: 'user', content: 'Say hi from the page'}]);

	assertWasmServed();
	assert.deepEqual(browser.errors, []);
	assert.deepEqual(browser.warnings, []);
});

test('page evaluate sees plain result objects', async t => {
	const site = await startScriptedServer({staticRoot: PAGE_DIR, staticRoutes: {'/pkg': PKG_DIR}});
	t.after(() => site.close());
	api.setDefault(openaiOk('42'));
	await runPage(`${site.url}/index.html?api=${encodeURIComponent(`${api.url}/v1`)}`);

	const checks = await browser.page.evaluate(async () => {
		const {aggregate} = await import('/pkg/browser.js');
		const result = aggregate(['42', '41', '42'], {extract: 'number'});
		return {
			counts: Object.getPrototypeOf(result.counts) === Object.prototype,
			keys: Object.keys(result.counts).sort(),
			roundTrip: JSON.stringify(JSON.parse(JSON.stringify(result))) === JSON.stringify(result),
			hasMap: Object.values(result).some(value => value instanceof Map),
		};
	});

	assert.equal(checks.counts, true);
	assert.deepEqual(checks.keys, ['41', '42']);
	assert.equal(checks.roundTrip, true);
	assert.equal(checks.hasMap, false);
	assert.deepEqual(browser.errors, []);
});

test('Vite build of an app runs complete', async t => {
	const outDir = mkdtempSync(path.join(tmpdir(), 'pte-vite-'));
	t.after(() => rmSync(outDir, {recursive: true, force: true}));
	await build({configFile: VITE_CONFIG, build: {outDir}});

	// Vite copied the wasm module into the build as an asset.
	const files = readdirSync(outDir, {recursive: true});
	assert.ok(files.some(file => file.endsWith('.wasm')), `no .wasm file in the build: ${files.join(', ')}`);

	const site = await startScriptedServer({staticRoot: outDir});
	t.after(() => site.close());
	api.setDefault(openaiOk('Hello from the Vite app'));

	const output = await runPage(`${site.url}/index.html?api=${encodeURIComponent(`${api.url}/v1`)}`);

	assert.equal(output.complete.text, 'Hello from the Vite app');
	assert.equal(api.requests().length, 1);
	assert.equal(api.requests()[0].headers.origin, site.url);
	assert.deepEqual(api.requests()[0].body.messages, [{role: 'user', content: 'Say hi from the Vite app'}]);
	assertWasmServed();
	assert.deepEqual(browser.errors, []);
	assert.deepEqual(browser.warnings, []);
});
