// An async onEvent handler whose promise rejects (a log sink that is down) is treated
// like one that throws: the rejection is caught, reported once as a warning, and the
// run goes on, with no unhandled rejection. The run happens in a child process, so that
// an exit caused by an unhandled rejection would be seen.

import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {test} from 'node:test';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

const SOURCE = `
const m = await import('parallel-task-executor');
let unhandled = 0;
process.on('unhandledRejection', () => { unhandled += 1; });
const result = await m.section({
	provider: m.custom(async () => 'done'),
	subtasks: [{id: 'a', prompt: 'x'}, {id: 'b', prompt: 'y'}],
	async onEvent() { throw new Error('log sink is down'); },
});
await new Promise(resolve => setTimeout(resolve, 50));
console.log(JSON.stringify({unhandled, warnings: result.warnings.map(w => w.code)}));
`;

test('async onEvent rejection is handled', () => {
	const child = spawnSync(process.execPath, ['--input-type=module', '-e', SOURCE], {cwd: root, encoding: 'utf8', timeout: 30_000});
	assert.equal(child.status, 0, child.stderr.slice(0, 1500));
	const outcome = JSON.parse(child.stdout.trim().split('\n').at(-1));
	assert.equal(outcome.unhandled, 0, 'rejections of the promises returned by onEvent were left unhandled');
	assert.ok(outcome.warnings.includes('on-event-threw'), `warnings: ${outcome.warnings.join(', ')}`);
});
