// The API reference (docs/api.md) documents the batch mode: every option of `batch: { ... }`
// that pkg/index.d.ts declares, `resumeBatch`, `batchLimits` with the limits it returns,
// the batch events, which vote rules batch mode takes, and that a synthesis or a judge
// runs as ordinary full-price calls after the batches.

import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {test} from 'node:test';
import * as api from 'parallel-task-executor';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const reference = readFileSync(path.join(repoRoot, 'docs', 'api.md'), 'utf8');
const types = readFileSync(path.join(repoRoot, 'pkg', 'index.d.ts'), 'utf8');

/** Returns the text of the "## Batch mode" section of the reference. */
function batchSection() {
	const start = reference.indexOf('\n## Batch mode\n');
	assert.notEqual(start, -1, 'docs/api.md has no "## Batch mode" section');
	const end = reference.indexOf('\n## ', start + 1);
	return reference.slice(start, end === -1 ? undefined : end);
}

test('api reference documents batch mode', () => {
	assert.equal(typeof api.resumeBatch, 'function', 'resumeBatch is exported');
	assert.equal(typeof api.batchLimits, 'function', 'batchLimits is exported');
	for (const name of ['resumeBatch', 'batchLimits', 'batch-submitted', 'pollIntervalMs']) {
		assert.ok(reference.includes(name), `docs/api.md never mentions ${name}`);
	}
});

test('batch section lists every declared batch option', () => {
	const section = batchSection();
	const declaration = /export interface BatchOptions \{([\s\S]*?)\n\}/.exec(types);
	assert.ok(declaration, 'pkg/index.d.ts declares no BatchOptions interface');
	const options = [...declaration[1].matchAll(/^\t(\w+)\?:/gm)].map(match => match[1]);
	assert.ok(options.length >= 8, `only ${options.length} options found in BatchOptions`);
	for (const option of options) {
		assert.ok(section.includes(`\`${option}\``), `the batch section does not document batch.${option}`);
	}
});

test('batch section documents events, limits and rules', () => {
	const section = batchSection();
	for (const event of ['batch-submitted', 'batch-progress', 'batch-ended']) {
		assert.ok(section.includes(`\`${event}\``), `the batch section does not document the ${event} event`);
	}

	const limits = api.batchLimits();
	for (const [provider, {maxRequests, maxBytes}] of Object.entries(limits)) {
		assert.ok(section.includes(String(maxRequests)), `the batch section does not give ${provider}'s maxRequests ${maxRequests}`);
		assert.ok(section.includes(String(maxBytes)), `the batch section does not give ${provider}'s maxBytes ${maxBytes}`);
	}

	assert.match(section, /`\{ firstTo \}` and `\{ aheadBy \}` are rejected/, 'the batch section does not say that adaptive rules are rejected');
	assert.match(section, /`\{ synthesize \}` merge and the judge calls[^.]*full price/, 'the batch section does not say that a synthesis and judge calls are full-price calls');
	assert.match(section, /resumeBatch\(handle, options\)/);
	assert.match(section, /DEADLINE_EXCEEDED/);
});
