// Headless Chromium for browser tests: Debian's /usr/bin/chromium (or CHROMIUM_PATH)
// driven by playwright-core, with a fresh profile directory that is removed on close.
// Console errors and uncaught page errors are collected, so a test can assert that
// a page logged none.
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const CHROMIUM_ARGS = [
	'--no-sandbox',
	'--disable-gpu',
	'--disable-quic',
	'--no-first-run',
	'--disable-background-networking',
	'--disable-component-update',
	'--disable-sync',
];

/**
Launches headless Chromium. Returns `{ context, page, version, errors, warnings,
responses, close }`. `errors` lists `{ type, text, url }` for each console error
(`type` "console") and each uncaught exception or unhandled rejection in a page
(`type` "pageerror"), in order. `warnings` lists the console warnings the same way,
and `responses` lists `{ url, status, contentType }` for every response a page loaded.
*/
export async function launchChromium() {
	const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
	const profile = mkdtempSync(path.join(tmpdir(), 'pte-chromium-'));
	const errors = [];
	const warnings = [];
	const responses = [];
	let context;
	try {
		context = await chromium.launchPersistentContext(profile, {
			executablePath,
			headless: true,
			args: CHROMIUM_ARGS,
			viewport: {width: 900, height: 600},
		});
	} catch (error) {
		rmSync(profile, {recursive: true, force: true});
		throw new Error(`could not launch Chromium at ${executablePath} (set CHROMIUM_PATH to another binary): ${error.message}`, {cause: error});
	}

	const watch = page => {
		page.on('console', message => {
			const entry = {type: 'console', text: message.text(), url: message.location().url ?? null};
			if (message.type() === 'error') {
				errors.push(entry);
			} else if (message.type() === 'warning') {
				warnings.push(entry);
			}
		});
		page.on('response', response => {
			responses.push({url: response.url(), status: response.status(), contentType: response.headers()['content-type'] ?? null});
		});
		page.on('pageerror', error => {
			errors.push({type: 'pageerror', text: `${error.name}: ${error.message}`, url: null});
		});
	};

	// A persistent context opens with one page, which the 'page' event does not report.
	context.on('page', watch);
	let page = context.pages()[0];
	if (page) {
		watch(page);
	} else {
		page = await context.newPage();
	}

	let closing;
	return {
		context,
		page,
		version: context.browser()?.version() ?? null,
		errors,
		warnings,
		responses,
		close() {
			closing ??= (async () => {
				try {
					await context.close();
				} finally {
					rmSync(profile, {recursive: true, force: true});
				}
			})();
			return closing;
		},
	};
}
