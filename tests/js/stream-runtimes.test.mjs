// The streaming parser in workerd and in Chromium, as in Node: a recorded stream cut at
// every byte offset (inside multi-byte characters too) gives the same text each time.
import assert from 'node:assert/strict';
import {fileURLToPath} from 'node:url';
import {after, before, test} from 'node:test';
import {launchChromium} from '../support/chromium.mjs';
import {anthropicStream, cutAt, openaiStream, startScriptedServer} from '../support/scripted-server.mjs';
import {startWorker} from '../support/workerd.mjs';

const WORKER = fileURLToPath(new URL('../runtimes/workerd/stream-worker.js', import.meta.url));
const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const PAGE_DIR = fileURLToPath(new URL('../runtimes/browser/', import.meta.url));

const TEXT = 'Caf\u00E9 \u{1F600} 42';
const STREAMS = {
	openai: openaiStream(TEXT, {pieces: ['Caf', '\u00E9 \u{1F600}', ' 42']}),
	anthropic: anthropicStream(TEXT, {pieces: ['Ca', 'f\u00E9 \u{1F600} ', '42']}),
};

/** Returns the length in bytes of a streamed action's whole body. */
function bodyLength(stream) {
	return Buffer.concat(stream.chunks.map(chunk => Buffer.from(chunk))).length;
}

let api;

before(async () => {
	api = await startScriptedServer();
	// Each request names its cut offset in its prompt: "cut-<offset>".
	api.setDefault(record => {
		const offset = Number(JSON.stringify(record.body).match(/cut-(\d+)/)[1]);
		const stream = record.path.endsWith('/messages') ? STREAMS.anthropic : STREAMS.openai;
		return {...cutAt(stream, [offset]), chunkDelayMs: 1};
	});
});

after(async () => {
	await api.close();
});

/** Checks one result per offset, each with the whole text. */
function assertEveryCut(results, from, to) {
	assert.equal(results.length, to - from + 1);
	for (const result of results) {
		assert.equal(result.error, undefined, `cut at byte ${result.offset}: ${result.error}`);
		assert.equal(result.text, TEXT, `cut at byte ${result.offset}`);
		assert.equal(result.finishReason, 'stop', `cut at byte ${result.offset}`);
	}
}

test('workerd reads streams cut at every byte', async () => {
	const worker = await startWorker(WORKER, {define: {__API_BASE__: `${api.url}/v1`}});
	try {
		for (const name of ['openai', 'anthropic']) {
			const last = bodyLength(STREAMS[name]);
			// eslint-disable-next-line no-await-in-loop
			const response = await worker.dispatchFetch(`http://worker/cut?api=${name}&from=0&to=${last}`);
			// eslint-disable-next-line no-await-in-loop
			assertEveryCut(await response.json(), 0, last);
		}
	} finally {
		await worker.dispose();
	}
});

test('Chromium reads streams cut at every byte', async () => {
	const site = await startScriptedServer({staticRoot: PAGE_DIR, staticRoutes: {'/pkg': PKG_DIR}});
	const browser = await launchChromium();
	try {
		const {page} = browser;
		// Any page of the site will do: /pkg/ then resolves against it.
		await page.goto(`${site.url}/pkg/package.json`);
		for (const name of ['openai', 'anthropic']) {
			const last = bodyLength(STREAMS[name]);
			// eslint-disable-next-line no-await-in-loop
			const results = await page.evaluate(async ({apiBase, name, last}) => {
				const library = await import('/pkg/browser.js');
				const provider = name === 'openai'
					? library.openai({baseURL: apiBase, model: 'scripted', stream: true})
					: library.anthropic({baseURL: apiBase, model: 'scripted', apiKey: 'sk-ant-page-test', maxTokens: 32, stream: true, browser: true});
				const out = [];
				for (let offset = 0; offset <= last; offset += 1) {
					try {
						// eslint-disable-next-line no-await-in-loop
						const result = await library.complete({provider, prompt: `cut-${offset}`});
						out.push({offset, text: result.text, finishReason: result.finishReason});
					} catch (error) {
						out.push({offset, error: `${error.code}: ${error.message}`});
					}
				}

				return out;
			}, {apiBase: `${api.url}/v1`, name, last});
			assertEveryCut(results, 0, last);
		}

		// The JSON page has no icon, so Chromium's own favicon request gets a 404.
		assert.deepEqual(browser.errors.filter(error => !error.url?.endsWith('/favicon.ico')), []);
	} finally {
		await browser.close();
		await site.close();
	}
});
